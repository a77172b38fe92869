"""The dashboard in a real browser (chromium): live queue, live log, actions, sessions."""

from __future__ import annotations

import getpass
from typing import Any

import pytest

from tests.browser.conftest import PROGRESS_JOB, Web, sign_in, signed_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


def row(page: Any, job_id: int) -> Any:
    return page.locator(f'[data-testid=queue] a.row[data-job="{job_id}"]')


def test_a_job_submitted_by_the_cli_appears_without_a_reload_and_its_state_follows(
    context: Any, dashboard: Web
) -> None:
    """Queued by gbatch, held, released, cancelled: each shows in the open queue page."""
    page = signed_in(context, dashboard)
    expect(page.locator("#live.up")).to_be_attached()
    job_id = dashboard.gflow.submit("--hold", "-n", "live-one", "sleep", "60")
    expect(row(page, job_id).locator(".c-state")).to_have_text("Hold")
    expect(row(page, job_id).locator(".c-name")).to_have_text("live-one")
    dashboard.gflow.ok("gjob", "release", str(job_id))
    expect(row(page, job_id).locator(".c-state")).to_have_text("Running")
    dashboard.gflow.ok("gcancel", str(job_id))
    expect(row(page, job_id).locator(".c-state")).to_have_text("Cancelled")


def test_the_log_follows_as_it_prints_with_carriage_returns_as_a_terminal_shows_them(
    context: Any, dashboard: Web
) -> None:
    gflow = dashboard.gflow
    job_id = gflow.submit("-n", "progress", "python3", "-c", PROGRESS_JOB)
    page = signed_in(context, dashboard)
    page.goto(f"{dashboard.base}/#/job/{job_id}")
    log = page.get_by_test_id("log")
    expect(log).to_contain_text("first line")
    (gflow.workdir / "go").touch()
    expect(log).to_contain_text("last line")
    text = log.inner_text()
    assert "progress 100%" in text and "progress 10%" not in text, text
    assert "red text" in text and "\x1b" not in text and "[31m" not in text, text
    expect(page.get_by_test_id("state")).to_have_text("Finished")


def test_cancel_from_the_job_page_and_no_change_without_the_csrf_token(
    context: Any, dashboard: Web
) -> None:
    job_id = dashboard.gflow.submit("--hold", "sleep", "60")
    page = signed_in(context, dashboard)
    # The session's cookie alone (what another page of this host could have) is refused.
    answer = page.request.post(f"{dashboard.base}/api/v1/jobs/{job_id}/cancel", data="{}")
    assert answer.status == 403, answer.text()
    assert "CSRF" in answer.json()["error"]["message"]
    assert dashboard.gflow.job(job_id)["state"] == "Hold"
    page.goto(f"{dashboard.base}/#/job/{job_id}")
    page.locator("button[data-action=cancel]").click()
    expect(page.get_by_test_id("state")).to_have_text("Cancelled")
    assert dashboard.gflow.job(job_id)["state"] == "Cancelled"


def test_the_submit_form_uses_gbatchs_checks_and_messages(context: Any, dashboard: Web) -> None:
    page = signed_in(context, dashboard)
    page.goto(f"{dashboard.base}/#/submit")
    page.fill("input[name=command]", "echo from-the-form")
    page.fill("input[name=mem]", "lots")
    page.get_by_role("button", name="Submit").click()
    message = page.get_by_test_id("message")
    expect(message).to_contain_text("argument -m/--mem")
    page.fill("input[name=mem]", "1G")
    page.fill("input[name=name]", "formed")
    page.get_by_role("button", name="Submit").click()
    expect(message).to_contain_text("Submitted job")
    job_id = int(message.locator("a").inner_text().split()[-1])
    job = dashboard.gflow.wait_state(job_id)
    assert (job["name"], job["memory_mb"], job["state"]) == ("formed", 1024, "Finished")


def test_without_a_session_the_queue_is_read_only_and_hides_logs_and_commands(
    context: Any, dashboard: Web
) -> None:
    job_id = dashboard.gflow.submit("-n", "secretive", "echo", "s3cr3t-output")
    dashboard.gflow.wait_state(job_id)
    page = context.new_page()
    page.goto(dashboard.base + "/")
    expect(row(page, job_id).locator(".c-name")).to_have_text("secretive")
    page.goto(f"{dashboard.base}/#/job/{job_id}")
    expect(page.get_by_test_id("state")).to_have_text("Finished")
    expect(page.locator("main")).to_contain_text("Sign in")
    assert "s3cr3t" not in page.content()
    assert page.locator("button[data-action]").count() == 0
    for path in (f"/api/v1/jobs/{job_id}", f"/api/v1/jobs/{job_id}/log",
                 "/api/v1/jobs?user=all&fields=id,command",
                 f"/web/api/jobs/{job_id}/log/stream"):  # fmt: skip
        answer = page.request.get(dashboard.base + path)
        assert answer.status == 403, (path, answer.status)


def test_a_login_link_asks_first_and_works_once(context: Any, browser: Any, dashboard: Web) -> None:
    """The link's page names whom it signs in and waits for the person; "not me" keeps
    the browser as it was; the token leaves the URL; a spent link says so."""
    url = dashboard.login_url()
    page = context.new_page()
    page.goto(url)
    expect(page.get_by_test_id("signin")).to_contain_text(f"Sign in as {getpass.getuser()}")
    assert "login=" not in page.url
    page.get_by_text("not me").click()
    expect(page.locator("#who")).to_contain_text("read-only")
    sign_in(page, url)  # declining spent nothing
    expect(page.locator("#who")).to_contain_text("sign out")
    assert page.evaluate("document.cookie") == ""  # nothing another port could replace
    other = browser.new_context()
    try:
        second = other.new_page()
        second.goto(url)
        expect(second.get_by_test_id("message")).to_contain_text("spent or expired")
        expect(second.locator("#who")).to_contain_text("read-only")
    finally:
        other.close()


def test_hold_release_and_redo_from_the_job_page(context: Any, dashboard: Web) -> None:
    gflow = dashboard.gflow
    blocker = gflow.submit("--hold", "sleep", "60")
    job_id = gflow.submit("-n", "waits", "--depends-on", str(blocker), "echo", "again")
    page = signed_in(context, dashboard)
    page.goto(f"{dashboard.base}/#/job/{job_id}")
    state = page.get_by_test_id("state")
    expect(state).to_have_text("Queued")
    page.locator("button[data-action=hold]").click()
    expect(state).to_have_text("Hold")
    assert gflow.job(job_id)["state"] == "Hold"
    page.locator("button[data-action=release]").click()
    expect(state).to_have_text("Queued")
    gflow.ok("gcancel", str(blocker))
    expect(state).to_have_text("Cancelled")  # its dependency can no longer be met
    page.locator("button[data-action=redo]").click()
    message = page.get_by_test_id("message")
    expect(message).to_contain_text(f"(a redo of {job_id})")
    redone = int(message.inner_text().split()[2])
    assert gflow.job(redone)["name"] == "waits"


def test_markup_in_a_jobs_name_project_and_log_is_shown_as_text(
    context: Any, dashboard: Web
) -> None:
    """Another local user names a job, its project and its output like markup: every page
    shows the characters, and nothing of it runs or becomes an element."""
    hostile = '<img src=x onerror="window.pwned=1">'
    job_id = dashboard.gflow.submit(
        "-n", hostile, "-P", "<b>p</b>", "echo", "<script>window.pwned=2</script>"
    )
    dashboard.gflow.wait_state(job_id)
    page = signed_in(context, dashboard)
    expect(row(page, job_id).locator(".c-name")).to_have_text(hostile)
    expect(row(page, job_id).locator(".c-project")).to_have_text("<b>p</b>")
    page.goto(f"{dashboard.base}/#/job/{job_id}")
    expect(page.get_by_test_id("log")).to_contain_text("<script>window.pwned=2</script>")
    expect(page.locator("main")).to_contain_text(hostile)
    assert page.evaluate("window.pwned") is None
    assert page.locator("main img, main b, main script").count() == 0
