"""Every page at a desktop and a phone size: saved as screenshots (artifacts under
$GFLOW_ARTIFACTS, else <tmp>/gflow-artifacts) and checked to fit the viewport's width."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PAGES, PHONE, Web, artifacts_dir, sign_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


def fits(page: Any) -> bool:
    width: int = page.evaluate("document.scrollingElement.scrollWidth")
    return width <= page.viewport_size["width"] + 1


def test_every_page_at_desktop_and_phone_size(browser: Any, busy: tuple[Web, int]) -> None:
    web, main = busy
    out = artifacts_dir()
    overflowing = []
    for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=size)
        context.set_default_timeout(15_000)
        try:
            page = context.new_page()
            sign_in(page, web.login_url())
            for name, ready in PAGES.items():
                page.goto(f"{web.base}/#/{f'job/{main}' if name == 'job' else name}")
                expect(page.locator(ready).first).to_be_visible()
                if name == "job":
                    expect(page.get_by_test_id("log")).to_contain_text("accuracy")
                page.screenshot(path=str(out / f"dashboard-{name}-{size_name}.png"))
                if not fits(page):
                    overflowing.append(f"{name} at {size_name}")
        finally:
            context.close()
    print(f"screenshots in {out}")
    assert not overflowing, f"wider than the viewport: {overflowing}"
