"""Browser tests: Python playwright driving Debian's chromium (no browser download).

One browser per test module; each test gets its own context (cookies, storage) and its
own daemon with `[web] listen` on a free port. Where chromium or playwright is missing the
tests skip, saying why (scripts/install-browsers.sh installs it when run as root).
Firefox is driven without playwright, over WebDriver BiDi (bidi.py, test_firefox.py).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.dashboard import ARGS, CHROMIUM  # one set of launch settings for both

from tests.helpers import Gflow, wait_for

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LOG_JOB = (
    "import sys, time\n"
    "print('epoch 1/3: loading data', flush=True)\n"
    "for p in range(0, 101, 20):\n"
    "    sys.stdout.write(f'\\r[{\"#\" * (p // 5):20}] {p}%'); sys.stdout.flush()\n"
    "print()\n"
    "print('\\x1b[32mloss 0.412\\x1b[0m accuracy 0.87', flush=True)\n"
    "time.sleep(300)\n"
)
PAGES = {  # page -> what shows it is drawn
    "queue": "[data-testid=queue] a.row",
    "job": "[data-testid=log]",
    "gpus": "[data-testid=gpus] .gpu",
    "reservations": "[data-testid=timeline] svg",
    "plots": "[data-testid=plots] svg",
}
PROGRESS_JOB = (
    "import os, sys, time\n"
    "print('first line', flush=True)\n"
    "while not os.path.exists('go'):\n"
    "    time.sleep(0.05)\n"
    "for p in (10, 50, 100):\n"
    "    sys.stdout.write(f'\\rprogress {p}%'); sys.stdout.flush()\n"
    "print()\n"
    "print('\\x1b[31mred\\x1b[0m text', flush=True)\n"
    "print('last line', flush=True)\n"
)


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
        pytest.skip(f"{CHROMIUM} is missing (scripts/install-browsers.sh installs it as root)")
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


def sign_in(page: Any, url: str) -> None:
    """Open a login link and confirm whom it signs in, as a person would."""
    page.goto(url)
    page.get_by_test_id("sign-in").click()
    page.wait_for_selector("body[data-ready='1']")


def signed_in(context: Any, web: Web) -> Any:
    """A page of this context, signed in through a fresh one-time link."""
    page = context.new_page()
    sign_in(page, web.login_url())
    return page


@pytest.fixture
def busy(make_gflow: Any) -> Iterator[tuple[Web, int]]:
    """A daemon with four GPUs in every condition, and jobs in most states."""
    web = make_web(make_gflow, fake_gpus="4x24G")
    gflow = web.gflow
    foreign = subprocess.Popen(["sleep", "600"])
    try:
        main = gflow.submit("-n", "train-resnet", "-P", "vision", "--gpus", "1", "-t", "4h",
                            "python3", "-c", LOG_JOB)  # fmt: skip
        shared = [
            gflow.submit("-n", f"sweep-lr-{i}", "-P", "nlp", "--gpus", "1", "--shared",
                         "--gpu-memory", "8G", "sleep", "300")
            for i in range(2)
        ]  # fmt: skip
        for job_id in (main, *shared):
            gflow.wait_state(job_id, "Running")
        ours = wait_for(lambda: gflow.job_processes(main), what="the job's processes")[0].pid
        gpu_of = {j: gflow.job(j)["gpu_ids"][0] for j in (main, shared[0])}
        taken = set(gpu_of.values())
        spare = [i for i in range(4) if i not in taken]
        usage = {
            str(gpu_of[main]): {"used": "18G", "pids": [ours]},
            str(spare[-1]): {"used": "10G", "pids": [foreign.pid]},
        }
        (gflow.home / "fake_gpus.json").write_text(json.dumps(usage))
        gflow.submit("-n", "evaluate", "-P", "vision", "--depends-on", str(main), "echo", "eval")
        gflow.submit("--hold", "-n", "later", "sleep", "1")
        for name, command in (("prep-data", "true"), ("broken", "false")):
            gflow.wait_state(gflow.submit("-n", name, "-P", "vision", "sh", "-c", command))
        gflow.ok("gctl", "reserve", "create", "--gpu-ids", str(spare[0]),
                 "--start", "now+1h", "--duration", "3h")  # fmt: skip
        yield web, main
    finally:
        foreign.kill()
        foreign.wait()
