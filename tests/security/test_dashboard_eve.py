"""The dashboard against a hostile local user, eve, without her victims' help (from a
review that found each of these open): swapping or planting her session in dan's browser,
voiding his login link or session, taking every connection or every followed log, and
making the daemon expand millions of ids for one anonymous request."""

from __future__ import annotations

import http.client
import http.server
import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.browser.conftest import Web, browser, free_port, make_web, sign_in
from tests.security.system import SYSTEM_PYTHON, system, users
from tests.security.test_dashboard_access import login, request, session, signed, token_of

__all__ = ["browser", "system", "users"]  # fixtures


@pytest.fixture
def web(make_gflow: Any) -> Web:
    return make_web(make_gflow)


def open_stream(port: int, path: str, headers: str = "") -> socket.socket:
    """A raw connection that asked for a stream and got its head (then holds it)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    if not head.startswith(b"HTTP/1.1 200"):  # the whole answer, to say why
        length = re.search(rb"Content-Length: (\d+)", head)
        while length and len(head.split(b"\r\n\r\n", 1)[1]) < int(length.group(1)):
            head += sock.recv(4096)
        sock.close()
        raise ConnectionRefusedError(head.decode(errors="replace"))
    return sock


def hold_streams(port: int, path: str, count: int) -> tuple[list[socket.socket], str]:
    """Open up to `count` streams; (those that opened, the first refusal's head)."""
    held: list[socket.socket] = []
    for _ in range(count):
        try:
            held.append(open_stream(port, path))
        except ConnectionRefusedError as refused:
            return held, str(refused)
    return held, ""


def test_anonymous_streams_cannot_lock_everyone_out(web: Web) -> None:
    """Eve, with no session, opens the public event stream 64 times (the site's connection
    cap): past 16 she is refused, and dan still opens the page and signs in."""
    port = int(web.base.rsplit(":", 1)[1])
    held, refused = hold_streams(port, "/web/api/events", 64)
    try:
        assert len(held) == 16 and refused.startswith("HTTP/1.1 503"), (len(held), refused)
        assert "16 live streams" in refused
        assert request(web, "GET", "/")[0] == 200
        sid, csrf = session(web)
        dans = open_stream(port, f"/web/api/events?session={sid}&csrf={csrf}")
        dans.close()
    finally:
        for sock in held:
            sock.close()


def test_a_login_is_only_from_the_dashboards_own_page_and_asking_spends_nothing(
    web: Web,
) -> None:
    """Another site's form or script posting a login (its Origin, or none) is refused;
    asking whom a token signs in spends nothing; a spent token says so."""
    token = token_of(web.login_url())
    for origin in ("http://127.0.0.1:8000", "null"):
        status, answer = login(web, token, confirm=True, origin=origin)
        assert status == 403, answer
    body = json.dumps({"token": token, "confirm": True}).encode()
    plain = {"Content-Type": "application/json"}
    assert request(web, "POST", "/web/api/login", plain, body)[0] == 403  # no Origin
    status, answer = login(web, token, confirm=False)
    assert status == 200 and answer["user"] and "session" not in answer, answer
    status, answer = login(web, token, confirm=True)
    assert status == 200 and answer["session"] and answer["csrf"], answer
    status, answer = login(web, token, confirm=False)
    assert status == 403 and "spent or expired" in answer["error"]["message"]


# ---- system mode: eve and dan are real users of one root daemon ----------------------------

EVE_LOGINS = r"""
import http.client, json, socket, sys
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sys.argv[1])
unix = Unix("gflowd")
port = int(sys.argv[2])
tcp = http.client.HTTPConnection("127.0.0.1", port)
redeem = sys.argv[4] == "redeem"
for _ in range(int(sys.argv[3])):
    unix.request("POST", "/api/v1/web/token", body=b"", headers={"Content-Length": "0"})
    answer = unix.getresponse()
    url = json.loads(answer.read())["url"]
    assert answer.status == 200, answer.status
    if redeem:
        body = json.dumps({"token": url.split("#login=")[1], "confirm": True})
        tcp.request("POST", "/web/api/login", body=body, headers={
            "Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"})
        got = tcp.getresponse()
        got.read()
        assert got.status == 200, got.status
print("done")
"""


def as_eve(eve: Any, script: str, *args: str) -> None:
    done = subprocess.run(
        ["runuser", "-u", eve.name, "--", "env", "-i", f"HOME={eve.home}", SYSTEM_PYTHON,
         "-I", "-c", script, *args],
        capture_output=True, text=True, timeout=600, cwd=eve.home,
    )  # fmt: skip
    assert done.returncode == 0 and "done" in done.stdout, done.stderr


def system_web(system: Any, users: Any) -> tuple[Any, Any, Any, Web]:
    dan, eve = users.user("dan"), users.user("eve")
    port = free_port()
    gf = system(f'[web]\nlisten = "127.0.0.1:{port}"\n')
    gf.start()
    return gf, dan, eve, Web(gf, port)


def login_link(gf: Any, user: Any) -> str:
    done = gf.as_user(user, "gflowd", "web")
    assert done.returncode == 0, done.stderr
    found = re.search(r"http://\S+", done.stdout)
    assert found, done.stdout
    return found.group(0)


def signed_in_as(web: Web, gf: Any, user: Any) -> tuple[str, str]:
    status, answer = login(web, token_of(login_link(gf, user)), confirm=True)
    assert status == 200, answer
    return answer["session"], answer["csrf"]


def test_eve_cannot_void_dans_login_link_or_sign_him_out(system: Any, users: Any) -> None:
    """Eve asks for 1,000 tokens of her own, then opens 2,000 sessions: dan's unredeemed
    link still works, and so does his session (each user's caps are their own)."""
    gf, dan, eve, web = system_web(system, users)
    dans_link = login_link(gf, dan)
    sid, csrf = signed_in_as(web, gf, dan)
    as_eve(eve, EVE_LOGINS, str(gf.paths.socket), web.base.rsplit(":", 1)[1], "1000", "issue")
    as_eve(eve, EVE_LOGINS, str(gf.paths.socket), web.base.rsplit(":", 1)[1], "2000", "redeem")
    status, answer = login(web, token_of(dans_link), confirm=False)
    assert status == 200 and answer["user"] == dan.name, answer
    _, _, body = request(web, "GET", "/web/api/session", signed(sid, csrf))
    assert json.loads(body)["user"] == dan.name


@pytest.fixture
def eves_page() -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """A server of eve's on another 127.0.0.1 port: (its port, [(header, body)]: what its
    one page answers, set by the test)."""
    answer: list[tuple[str, str]] = []

    class EvePage(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            header, body = answer[0]
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            if header:
                self.send_header("Set-Cookie", header)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), EvePage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield port, answer
    finally:
        server.shutdown()
        server.server_close()


def submit_from_the_page(page: Any) -> Any:
    return page.evaluate(
        """() => fetch("/web/api/submit", {method: "POST", headers: {
            "X-Gflow-Session": localStorage.getItem("gflow.session"),
            "X-CSRF-Token": localStorage.getItem("gflow.csrf"),
            "Content-Type": "application/json"},
            body: JSON.stringify({command: "echo dans-secret-command"})}).then(r => r.json())"""
    )


def test_eves_page_cannot_swap_dans_browser_into_her_session(
    browser: Any, system: Any, users: Any, eves_page: tuple[int, list[tuple[str, str]]]
) -> None:
    """Login CSRF: dan is signed in and opens eve's page, which sends his browser to her
    own login link. The dashboard asks whether to sign in as eve; until he says so it
    stays his, and what he submits is his."""
    gf, dan, eve, _ = system_web(system, users)
    port, answer = eves_page
    to_eves_link = f'<script>location.href = "{login_link(gf, eve)}";</script>'
    answer.append(("", f"<!doctype html>{to_eves_link}"))
    context = browser.new_context()
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        sign_in(page, login_link(gf, dan))
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("[data-testid=signin]")
        assert f"Sign in as {eve.name}?" in page.get_by_test_id("signin").inner_text()
        assert dan.name in page.locator("#who").inner_text()
        submitted = submit_from_the_page(page)
        assert submitted["jobs"][0]["user"] == dan.name, submitted
    finally:
        context.close()


def test_eves_port_cannot_plant_her_session_in_dans_browser(
    browser: Any, system: Any, users: Any, eves_page: tuple[int, list[tuple[str, str]]]
) -> None:
    """Session fixation from another port: eve's server sets a cookie for the host (cookies
    are per host, not per port) with her session, and sends dan to the dashboard with her
    session and CSRF token in the fragment. Neither counts: dan stays dan."""
    gf, dan, eve, web = system_web(system, users)
    sid, csrf = signed_in_as(web, gf, eve)
    port, answer = eves_page
    planted = f"{web.base}/#session={sid}&csrf={csrf}"
    cookie = f"gflow_session_{web.base.rsplit(':', 1)[1]}={sid}; Path=/; SameSite=Strict"
    answer.append((cookie, f'<!doctype html><script>location.href = "{planted}";</script>'))
    context = browser.new_context()
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        sign_in(page, login_link(gf, dan))
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_url(f"{web.base}/**")
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        who = page.locator("#who").inner_text()
        assert dan.name in who and eve.name not in who, who
        assert submit_from_the_page(page)["jobs"][0]["user"] == dan.name
    finally:
        context.close()


def test_eve_cannot_stop_dan_following_his_own_log(system: Any, users: Any) -> None:
    """Eve, signed in, follows the log of her own held job (a stream that never ends) as
    often as she may; dan still follows his running job's log."""
    gf, dan, eve, web = system_web(system, users)
    port = int(web.base.rsplit(":", 1)[1])
    eves = gf.submit(eve, "--hold", "sleep", "60")
    dans = gf.submit(dan, "sh", "-c", "echo dan-output; sleep 60")
    gf.wait_state(dans, "Running")
    sid, csrf = signed_in_as(web, gf, eve)
    held, refused = hold_streams(
        port, f"/web/api/jobs/{eves}/log/stream?session={sid}&csrf={csrf}", 32
    )
    try:
        assert refused.startswith("HTTP/1.1 503") and len(held) < 32, (len(held), refused)
        sid, csrf = signed_in_as(web, gf, dan)
        dans_stream = open_stream(
            port, f"/web/api/jobs/{dans}/log/stream?session={sid}&csrf={csrf}"
        )
        dans_stream.close()
    finally:
        for sock in held:
            sock.close()


def test_an_anonymous_query_of_a_few_kb_costs_the_daemon_little(web: Web) -> None:
    """`ids=` ranges are capped at 100,001 ids each; 40 of them (600 bytes, 4 million ids)
    must be refused at once, not built on the daemon's loop."""
    pid = int(json.loads(web.gflow.ok("gflowd", "status", "--json"))["pid"])
    before = psutil.Process(pid).memory_info().rss
    ranges = ",".join(f"{1 + i * 100_001}-{(i + 1) * 100_001}" for i in range(40))
    host, port = web.base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("GET", f"/api/v1/jobs?user=all&fields=id&ids={ranges}")
        answer = conn.getresponse()
        body = answer.read().decode()
    finally:
        conn.close()
    grew = (psutil.Process(pid).memory_info().rss - before) / 2**20
    assert answer.status == 400 and "more than 1,000,000 job ids" in body, body
    assert grew < 100, f"the daemon grew by {grew:.0f} MB"
