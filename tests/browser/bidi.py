"""A small WebDriver BiDi client for Debian's firefox-esr, which playwright cannot drive
(its Firefox support needs a patched build, and its BiDi mode sends commands ESR does not
know). Firefox serves BiDi itself (`--remote-debugging-port`): no geckodriver, no
download. Only what the dashboard's Firefox test needs: navigate, evaluate, wait for a
condition, screenshots, and the page's console errors.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

FIREFOX = "/usr/bin/firefox-esr"
LISTENING = re.compile(rb"WebDriver BiDi listening on (ws://\S+)")
# No first-run pages, updates or telemetry: a test browser talks only to the daemon.
PREFS = {
    "app.update.disabledForTesting": True,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "network.captive-portal-service.enabled": False,
}


class BidiError(Exception):
    pass


class Firefox:
    """One headless firefox-esr with one tab, driven over its BiDi WebSocket."""

    def __init__(self, process: asyncio.subprocess.Process, profile: Path) -> None:
        self.process = process
        self.profile = profile
        self.errors: list[str] = []  # console errors and uncaught exceptions of the page
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 0
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.context = ""

    @classmethod
    async def launch(cls, width: int, height: int) -> Firefox:
        profile = Path(tempfile.mkdtemp(prefix="gflow-firefox-"))
        prefs = "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
        (profile / "user.js").write_text(prefs)
        # Its home is the profile too: nothing is left in the real ~/.cache or ~/.mozilla.
        env = {**os.environ, "HOME": str(profile), "XDG_CACHE_HOME": str(profile / "cache")}
        process = await asyncio.create_subprocess_exec(
            FIREFOX, "--headless", "--no-remote", "--profile", str(profile),
            "--remote-debugging-port=0", "about:blank",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
        )  # fmt: skip
        browser = cls(process, profile)
        try:
            await browser._connect(await asyncio.wait_for(_bidi_url(process), 60))
            await browser.send("session.subscribe", {"events": ["log.entryAdded"]})
            tree = await browser.send("browsingContext.getTree", {})
            browser.context = tree["contexts"][0]["context"]
            await browser.send(
                "browsingContext.setViewport",
                {"context": browser.context, "viewport": {"width": width, "height": height}},
            )
        except BaseException:
            await browser.close()
            raise
        return browser

    async def _connect(self, url: str) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(f"{url}/session", max_msg_size=0)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.send("session.new", {"capabilities": {}})

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if data.get("type") == "event":
                self._on_event(data)
            elif (answer := self._answers.pop(data.get("id", -1), None)) is not None:
                answer.set_result(data)
        for answer in self._answers.values():
            answer.set_exception(BidiError("firefox closed the connection"))

    def _on_event(self, data: dict[str, Any]) -> None:
        entry = data.get("params", {})
        if data.get("method") == "log.entryAdded" and entry.get("level") == "error":
            self.errors.append(str(entry.get("text")))

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._ws is not None
        self._next_id += 1
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[self._next_id] = answer
        await self._ws.send_json({"id": self._next_id, "method": method, "params": params})
        data = await asyncio.wait_for(answer, 30)
        if data.get("type") == "error":
            raise BidiError(f"{method}: {data.get('error')}: {data.get('message')}")
        result: dict[str, Any] = data.get("result", {})
        return result

    async def goto(self, url: str) -> None:
        await self.send("browsingContext.navigate",
                        {"context": self.context, "url": url, "wait": "complete"})  # fmt: skip

    async def evaluate(self, expression: str) -> Any:
        """The expression's value, through JSON (so plain values only)."""
        done = await self.send(
            "script.evaluate",
            {
                "expression": f"JSON.stringify(({expression}) ?? null)",
                "target": {"context": self.context},
                "awaitPromise": True,
            },
        )
        if done.get("type") == "exception":
            raise BidiError(f"{expression}: {done['exceptionDetails'].get('text')}")
        return json.loads(done["result"]["value"])

    async def wait_for(self, expression: str, what: str, timeout: float = 15.0) -> Any:
        """Poll until the expression is truthy (a deadline, not a fixed sleep)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(BidiError):  # a page between two documents
                value = await self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise AssertionError(f"firefox: timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("browsingContext.captureScreenshot", {"context": self.context})
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send("browser.close", {}), 10)
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        if self._reader is not None:
            self._reader.cancel()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


async def _bidi_url(process: asyncio.subprocess.Process) -> str:
    """The WebSocket address firefox prints once its BiDi server listens; the rest of what
    it prints is read on (and dropped) so that it never blocks on a full pipe."""
    assert process.stdout is not None
    stdout = process.stdout
    while line := await stdout.readline():
        found = LISTENING.search(line)
        if found:
            asyncio.get_running_loop().create_task(_drain(stdout))
            return found.group(1).decode()
    raise BidiError(f"firefox exited ({await process.wait()}) before its BiDi server listened")


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
