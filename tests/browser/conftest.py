"""Browser tests: Python playwright driving Debian's chromium (no browser download).

One browser per test module; each test gets its own context (cookies, storage) and its
own daemon with `[web] listen` on a free port. Where chromium or playwright is missing the
tests skip, saying why (scripts/install-chromium.sh installs it when run as root).
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.dashboard import ARGS, CHROMIUM  # one set of launch settings for both

from tests.helpers import Gflow

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def artifacts_dir() -> Path:
    """Where screenshots go: $GFLOW_ARTIFACTS, else a temp directory (printed)."""
    where = Path(
        os.environ.get("GFLOW_ARTIFACTS") or Path(tempfile.gettempdir()) / "gflow-artifacts"
    )
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per test module: playwright's sync API keeps an event loop running in
    this thread while it is open, which would break later tests' asyncio.run()."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing (scripts/install-chromium.sh installs it as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Web:
    """A daemon with the dashboard on, and what a browser needs of it."""

    def __init__(self, gflow: Gflow, port: int) -> None:
        self.gflow = gflow
        self.base = f"http://127.0.0.1:{port}"

    def login_url(self) -> str:
        printed = self.gflow.ok("gflowd", "web")
        found = re.search(r"http://\S+", printed)
        assert found, printed
        return found.group(0)

    def http(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, str]:
        """One request as a non-browser client would send it: (status, body)."""
        request = urllib.request.Request(
            self.base + path, data=body if method != "GET" else None, method=method,
            headers=headers or {},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()


def make_web(make_gflow: Any, extra: str = "", fake_gpus: str = "2x24G") -> Web:
    port = free_port()
    gflow = make_gflow(config=f'[web]\nlisten = "127.0.0.1:{port}"\n{extra}', fake_gpus=fake_gpus)
    gflow.start()
    return Web(gflow, port)


@pytest.fixture
def dashboard(make_gflow: Any) -> Web:
    return make_web(make_gflow)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    made = browser.new_context(viewport=DESKTOP)
    made.set_default_timeout(15_000)
    try:
        yield made
    finally:
        made.close()


def signed_in(context: Any, web: Web) -> Any:
    """A page of this context, signed in through a fresh one-time link."""
    page = context.new_page()
    page.goto(web.login_url())
    page.wait_for_selector("body[data-ready='1']")
    return page
