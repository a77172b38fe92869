"""Every page at a desktop and a phone size: saved as screenshots (artifacts under
$GFLOW_ARTIFACTS, else <tmp>/gflow-artifacts) and checked to fit the viewport's width."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, Web, artifacts_dir, make_web
from tests.helpers import wait_for

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

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
            page.goto(web.login_url())
            page.wait_for_selector("body[data-ready='1']")
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
