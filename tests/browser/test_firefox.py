"""The dashboard in Firefox too: Debian's firefox-esr driven over WebDriver BiDi
(tests/browser/bidi.py): the live queue, a live log, cancel and the submit form, and
every page at desktop and phone size with no console errors, saved as screenshots."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable

import pytest

from tests.browser.bidi import FIREFOX, Firefox
from tests.browser.conftest import DESKTOP, PAGES, PHONE, PROGRESS_JOB, Web, artifacts_dir


def in_firefox(width: int, height: int, scenario: Callable[[Firefox], Awaitable[None]]) -> None:
    if not os.access(FIREFOX, os.X_OK):
        pytest.skip(f"{FIREFOX} is missing (scripts/install-browsers.sh installs it as root)")

    async def run() -> None:
        browser = await Firefox.launch(width, height)
        try:
            await scenario(browser)
        finally:
            await browser.close()

    asyncio.run(run())


def exists(selector: str) -> str:
    """A JS expression: whether the element is there."""
    return f"(document.querySelector({json.dumps(selector)}) !== null)"


def text_of(selector: str) -> str:
    """A JS expression: the element's text, or '' while it is not there."""
    return f"(document.querySelector({json.dumps(selector)})?.innerText ?? '')"


async def sign_in(browser: Firefox, web: Web) -> None:
    await browser.goto(web.login_url())
    await browser.wait_for(exists("[data-testid=sign-in]"), "the sign-in question")
    await browser.evaluate("document.querySelector('[data-testid=sign-in]').click()")
    await browser.wait_for("document.body.dataset.ready === '1'", "the signed-in page")


def test_live_queue_log_cancel_and_submit_form_in_firefox(dashboard: Web) -> None:
    gflow = dashboard.gflow

    async def scenario(browser: Firefox) -> None:
        await sign_in(browser, dashboard)
        await browser.wait_for(exists("#live.up"), "the live event stream")
        # A job submitted by the CLI appears, and its state follows, without a reload.
        job_id = gflow.submit("--hold", "-n", "fox", "sleep", "60")
        state = text_of(f'[data-testid=queue] a.row[data-job="{job_id}"] .c-state')
        await browser.wait_for(f"{state} === 'Hold'", "the held job in the queue")
        gflow.ok("gjob", "release", str(job_id))
        await browser.wait_for(f"{state} === 'Running'", "the job running in the queue")
        # Cancel from its page: the daemon did it.
        await browser.goto(f"{dashboard.base}/#/job/{job_id}")
        cancel = "button[data-action=cancel]"
        await browser.wait_for(exists(cancel), "the cancel button")
        await browser.evaluate(f"document.querySelector('{cancel}').click()")
        await browser.wait_for(f"{text_of('[data-testid=state]')} === 'Cancelled'", "Cancelled")
        assert gflow.job(job_id)["state"] == "Cancelled"
        # The log follows as it prints; \r progress as a terminal shows it, no ANSI codes.
        printer = gflow.submit("-n", "progress", "python3", "-c", PROGRESS_JOB)
        await browser.goto(f"{dashboard.base}/#/job/{printer}")
        log = text_of("[data-testid=log]")
        await browser.wait_for(f"{log}.includes('first line')", "the log's first line")
        (gflow.workdir / "go").touch()
        await browser.wait_for(f"{log}.includes('last line')", "the log's last line")
        text = await browser.evaluate(log)
        assert "progress 100%" in text and "progress 10%" not in text, text
        assert "red text" in text and "\x1b" not in text and "[31m" not in text, text
        # The submit form: gbatch's own message for a bad value, then a job.
        await browser.goto(f"{dashboard.base}/#/submit")
        await browser.wait_for(exists("input[name=command]"), "the form")
        await browser.evaluate(
            "(() => { const f = (n, v) => document.querySelector(`input[name=${n}]`).value = v;"
            " f('command', 'echo from-firefox'); f('mem', 'lots'); f('name', 'foxed');"
            " [...document.querySelectorAll('button')].find(b => b.textContent === 'Submit')"
            ".click(); })()"
        )
        message = text_of("[data-testid=message]")
        await browser.wait_for(f"{message}.includes('argument -m/--mem')", "gbatch's message")
        await browser.evaluate(
            "(() => { document.querySelector('input[name=mem]').value = '1G';"
            " [...document.querySelectorAll('button')].find(b => b.textContent === 'Submit')"
            ".click(); })()"
        )
        shown = await browser.wait_for(f"{message}.includes('Submitted job') && {message}",
                                       "the submitted job")  # fmt: skip
        job = gflow.wait_state(int(shown.split()[-1]))
        assert (job["name"], job["memory_mb"], job["state"]) == ("foxed", 1024, "Finished")
        assert browser.errors == [], browser.errors

    in_firefox(DESKTOP["width"], DESKTOP["height"], scenario)


@pytest.mark.parametrize("size_name", ["desktop", "phone"])
def test_every_page_in_firefox_fits_and_logs_no_error(
    busy: tuple[Web, int], size_name: str
) -> None:
    web, main = busy
    size = DESKTOP if size_name == "desktop" else PHONE
    out = artifacts_dir()

    async def scenario(browser: Firefox) -> None:
        await sign_in(browser, web)
        overflowing = []
        for name, ready in PAGES.items():
            await browser.goto(f"{web.base}/#/{f'job/{main}' if name == 'job' else name}")
            await browser.wait_for(exists(ready), name)
            if name == "job":
                log = text_of("[data-testid=log]")
                await browser.wait_for(f"{log}.includes('accuracy')", "the job's log")
            await browser.screenshot(out / f"dashboard-firefox-{name}-{size_name}.png")
            width = await browser.evaluate("document.scrollingElement.scrollWidth")
            if width > size["width"] + 1:
                overflowing.append(f"{name} ({width} px)")
        assert not overflowing, f"wider than {size['width']} px in firefox: {overflowing}"
        assert browser.errors == [], browser.errors

    in_firefox(size["width"], size["height"], scenario)
