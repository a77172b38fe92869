"""The dashboard's TCP site as a hostile local user sees it: nothing the Unix socket
offers is reachable without a session, a session id alone changes nothing (and no cookie
counts), and another site (or a name rebound to 127.0.0.1) is refused."""

from __future__ import annotations

import http.client
import json
import re
from typing import Any

import pytest

from tests.browser.conftest import Web, free_port, make_web
from tests.reliability.test_api_fuzz import ROUTES

PUBLIC_READS = {"/jobs", "/gpus", "/reservations", "/stats/timeline"}


def request(
    web: Web, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], str]:
    host, port = web.base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read().decode()
    finally:
        conn.close()


def login(web: Web, token: str, confirm: bool, origin: str | None = None) -> tuple[int, Any]:
    """POST /web/api/login as the dashboard's own page sends it (its Origin)."""
    headers = {"Content-Type": "application/json", "Origin": origin or web.base}
    body = json.dumps({"token": token, "confirm": confirm}).encode()
    status, _, answer = request(web, "POST", "/web/api/login", headers, body)
    return status, json.loads(answer)


def token_of(url: str) -> str:
    found = re.fullmatch(r"http://[^/]+/#login=([\w-]+)", url)
    assert found, url
    return found.group(1)


def session(web: Web) -> tuple[str, str]:
    """(session id, CSRF token), as the page gets them from a login link."""
    status, answer = login(web, token_of(web.login_url()), confirm=True)
    assert status == 200, answer
    return answer["session"], answer["csrf"]


def signed(sid: str, csrf: str, **more: str) -> dict[str, str]:
    return {"X-Gflow-Session": sid, "X-CSRF-Token": csrf, **more}


@pytest.fixture
def web(make_gflow: Any) -> Web:
    return make_web(make_gflow)


def test_no_socket_route_answers_over_tcp_without_a_session(web: Web) -> None:
    job_id = web.gflow.submit("--hold", "sleep", "60")
    for method, template in [*ROUTES, ("POST", "/web/token"), ("POST", "/shutdown")]:
        if method == "GET" and template in PUBLIC_READS:
            continue
        path = "/api/v1" + template.replace("{id}", str(job_id))
        status, _, body = request(web, method, path, body=b"{}")
        assert status in (403, 404, 405), (method, path, status, body)
    assert web.gflow.job(job_id)["state"] == "Hold"
    assert web.gflow.run("gflowd", "status").returncode == 0  # not shut down


def test_a_session_id_without_its_csrf_token_changes_nothing_and_reads_nothing(
    web: Web,
) -> None:
    job_id = web.gflow.submit("--hold", "sleep", "60")
    sid, csrf = session(web)
    for method, path in (("POST", f"/api/v1/jobs/{job_id}/cancel"),
                         ("GET", f"/api/v1/jobs/{job_id}/log"),
                         ("POST", "/web/api/submit")):  # fmt: skip
        status, _, body = request(web, method, path, {"X-Gflow-Session": sid}, b"{}")
        assert status == 403 and "CSRF" in body, (path, status, body)
        wrong = signed(sid, csrf[:-1] + ("A" if csrf[-1] != "A" else "B"))
        assert request(web, method, path, wrong, b"{}")[0] == 403
        as_cookie = {
            "Cookie": f"gflow_session_{web.base.rsplit(':', 1)[1]}={sid}",
            "X-CSRF-Token": csrf,
        }
        assert request(web, method, path, as_cookie, b"{}")[0] == 403  # no cookie counts
    assert web.gflow.job(job_id)["state"] == "Hold"
    # Both together: the user's own powers.
    both = signed(sid, csrf, **{"Content-Type": "application/json"})
    status, _, body = request(web, "POST", f"/api/v1/jobs/{job_id}/cancel", both, b"{}")
    assert status == 200, body
    assert json.loads(body)["job"]["state"] == "Cancelled"


def test_another_origin_or_host_is_refused(web: Web) -> None:
    job_id = web.gflow.submit("--hold", "sleep", "60")
    both = signed(*session(web))
    evil = {**both, "Origin": "http://evil.example"}
    assert request(web, "POST", f"/api/v1/jobs/{job_id}/hold", evil, b"{}")[0] == 403
    rebound = {"Host": f"evil.example:{web.base.rsplit(':', 1)[1]}"}
    assert request(web, "GET", "/api/v1/gpus", rebound)[0] == 403
    assert web.gflow.job(job_id)["state"] == "Hold"


def test_anonymous_reads_are_the_public_fields_only(web: Web) -> None:
    job_id = web.gflow.submit("-n", "visible", "echo", "hidden-command")
    status, headers, body = request(web, "GET", "/api/v1/jobs?user=all&fields=id,name,state")
    assert status == 200 and "visible" in body and "hidden-command" not in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    for fields in ("command", "workdir", "log_path", "id,script", "conda_env"):
        status, _, body = request(web, "GET", f"/api/v1/jobs?user=all&fields={fields}")
        assert status == 403, (fields, body)
    assert request(web, "GET", "/api/v1/jobs?user=all")[0] == 403  # every field: refused
    assert request(web, "GET", f"/api/v1/jobs/{job_id}")[0] == 403


def test_public_false_makes_everything_login_only(make_gflow: Any) -> None:
    web = make_web(make_gflow, "public = false\n")
    for path in ("/api/v1/jobs?user=all&fields=id", "/api/v1/gpus", "/api/v1/reservations",
                 "/api/v1/stats/timeline", "/web/api/events"):  # fmt: skip
        assert request(web, "GET", path)[0] == 403, path
    both = signed(*session(web))
    assert request(web, "GET", "/api/v1/gpus", both)[0] == 200
    assert request(web, "GET", "/")[0] == 200  # the page itself, which then asks to sign in


def test_gflowd_web_without_a_listen_address_says_how_to_turn_it_on(make_gflow: Any) -> None:
    gflow = make_gflow()
    gflow.start()
    done = gflow.run("gflowd", "web")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "[web] listen" in done.stderr, done.stderr


ODD_FORMS: list[Any] = [
    {"command": "--help"}, {"command": "-V"}, {"command": "echo x", "mem": "--help"},
    {"command": "echo x", "gpus": "-1"}, {"command": "echo x", "time": "forever"},
    {"command": "echo x", "gpus": 5}, {"command": ""}, {"command": "echo", "evil": "1"},
    {"command": "echo x", "workdir": "relative"}, {"command": "echo x", "depends_on": "@~999"},
    [], "text", None, {"command": "\x00"}, {"command": "echo x", "name": "\n"},
]  # fmt: skip


def test_odd_forms_get_one_line_answers_and_never_end_the_daemon(web: Web) -> None:
    both = signed(*session(web), **{"Content-Type": "application/json"})
    for form in ODD_FORMS:
        status, _, body = request(web, "POST", "/web/api/submit", both, json.dumps(form).encode())
        assert status in (201, 400, 404, 409), (form, status, body)
        if status != 201:
            message = json.loads(body)["error"]["message"]
            assert message and "\n" not in message, (form, message)
    for offset in ("-1", "x", "9" * 30):
        status, _, _ = request(web, "GET", f"/web/api/jobs/1/log/stream?offset={offset}", both)
        assert status in (400, 404), offset
    assert web.gflow.run("gflowd", "status").returncode == 0


def test_a_listener_beyond_loopback_is_warned_of_in_status_and_the_log(make_gflow: Any) -> None:
    port = free_port()
    gflow = make_gflow(config=f'[web]\nlisten = "0.0.0.0:{port}"\n')
    gflow.start()
    status = gflow.ok("gflowd", "status")
    assert f"Warning:  the dashboard listens on 0.0.0.0:{port}, beyond this machine" in status
    assert "beyond this machine" in gflow.paths.daemon_log.read_text()
    assert f"http://127.0.0.1:{port}/#login=" in gflow.ok("gflowd", "web")


def test_a_long_log_is_followed_from_its_last_bytes_when_asked(web: Web) -> None:
    """`tail=N`: the stream starts N bytes before the end (the page's 2 MiB)."""
    job_id = web.gflow.submit(
        "python3", "-c", "print('x' * 99, flush=True)\nfor _ in range(999): print('y' * 99)"
    )
    web.gflow.wait_state(job_id)
    sid, csrf = session(web)
    host, port = web.base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        path = f"/web/api/jobs/{job_id}/log/stream?offset=0&tail=1000&session={sid}&csrf={csrf}"
        conn.request("GET", path)
        answer = conn.getresponse()
        assert answer.status == 200
        head = answer.readline().decode()
        assert head == "event: chunk\n", head
        chunk = json.loads(answer.readline().decode().removeprefix("data: "))
    finally:
        conn.close()
    size = (web.gflow.paths.logs_dir / f"{job_id}.log").stat().st_size
    assert size > 90_000 and chunk["offset"] == size - 1000
