"""The dashboard of a system daemon: each browser is the Unix user whose socket issued its
login, and may do what that user may do, no more (real users made by useradd)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import free_port, sign_in
from tests.security.system import SystemGflow, User, Users, system, users

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

__all__ = ["system", "users"]  # fixtures


def login_url(gf: SystemGflow, user: User) -> str:
    done = gf.as_user(user, "gflowd", "web")
    assert done.returncode == 0, done.stderr
    found = re.search(r"http://\S+", done.stdout)
    assert found and user.name in done.stdout, done.stdout
    return found.group(0)


def test_in_system_mode_the_owner_cancels_and_another_user_is_refused(
    browser: Any, system: type[SystemGflow], users: Users
) -> None:
    alice, bob = users.user("alice"), users.user("bob")
    port = free_port()
    gf = system(f'[web]\nlisten = "127.0.0.1:{port}"\n')
    gf.start()
    job_id = gf.submit(alice, "--hold", "-n", "alices", "sleep", "60")
    base = f"http://127.0.0.1:{port}"
    for user, may in ((bob, False), (alice, True)):
        context = browser.new_context()
        context.set_default_timeout(15_000)
        try:
            page = context.new_page()
            sign_in(page, login_url(gf, user))
            expect(page.locator("#who")).to_contain_text(user.name)
            page.goto(f"{base}/#/job/{job_id}")
            expect(page.get_by_test_id("state")).to_have_text("Hold")
            if not may:  # bob sees alice's job, not her log
                expect(page.locator("main")).to_contain_text(f"The log is {alice.name}'s")
            page.locator("button[data-action=cancel]").click()
            if may:
                expect(page.get_by_test_id("state")).to_have_text("Cancelled")
            else:
                expect(page.get_by_test_id("message")).to_have_text(
                    f"job {job_id} belongs to {alice.name}; you cannot cancel it"
                )
                assert gf.job(job_id)["state"] == "Hold"
                # With bob's session and token, as the page sends them: refused by the rule.
                refused = page.evaluate(
                    """id => fetch(`/api/v1/jobs/${id}/log`, {headers: {
                        "X-Gflow-Session": localStorage.getItem("gflow.session"),
                        "X-CSRF-Token": localStorage.getItem("gflow.csrf")}})
                        .then(r => r.text())""",
                    job_id,
                )
                assert f"belongs to {alice.name}" in refused, refused
        finally:
            context.close()
    assert gf.job(job_id)["state"] == "Cancelled"
