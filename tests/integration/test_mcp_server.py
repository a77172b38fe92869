"""gflow-mcp driven end to end by the mcp package's own client, over stdio, against a real
daemon: list, show, log, submit (and dry run), hold, release, cancel, triage."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.helpers import BIN, Gflow

mcp = pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

TOOLS = {"list_jobs", "show_job", "job_log", "submit_job", "cancel_job", "hold_job",
         "release_job", "triage_job"}  # fmt: skip


def value(result: Any) -> Any:
    """A tool's answer: its structured content, or its text as JSON (or text)."""
    assert not result.is_error, result.content
    if result.structured_content is not None:
        found = result.structured_content
        return found.get("result", found) if set(found) == {"result"} else found
    text = "".join(c.text for c in result.content if c.type == "text")
    try:
        return json.loads(text)
    except ValueError:
        return text


async def session_run(gflow: Gflow) -> None:
    params = StdioServerParameters(
        command=str(BIN / "gflow-mcp"), env=gflow.env, cwd=str(gflow.workdir)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
        assert {tool.name for tool in listed.tools} == TOOLS

        async def call(tool: str, **arguments: Any) -> Any:
            return value(await session.call_tool(tool, arguments))

        dry = await call("submit_job", command="true", dry_run=True)
        assert "jobs" in json.dumps(dry) or dry
        assert await call("list_jobs", state="all") == []  # a dry run stores nothing

        failing = await call("submit_job", command="python3 -c 'import nosuchmodule_xyz'",
                             name="broken")  # fmt: skip
        busy = await call("submit_job", command="sleep 30", gpus=1)
        waiting = await call("submit_job", command="true", gpus=1)  # the one GPU is busy
        assert (await call("hold_job", job_id=waiting["id"]))["state"] == "Hold"
        assert (await call("release_job", job_id=waiting["id"]))["state"] == "Queued"
        assert (await call("cancel_job", job_id=waiting["id"]))["state"] == "Cancelled"
        assert (await call("cancel_job", job_id=busy["id"]))["state"] in ("Cancelled", "Running")

        for _ in range(400):  # the job is short; a deadline, not a fixed sleep
            if (await call("show_job", job_id=failing["id"]))["job"]["state"] == "Failed":
                break
            await asyncio.sleep(0.05)
        triage = await call("triage_job", job_id=failing["id"])
        assert triage["state"] == "Failed" and triage["exit_code"] == 1
        assert any("missing module 'nosuchmodule_xyz'" in c for c in triage["likely_causes"])
        assert "ModuleNotFoundError" in await call("job_log", job_id=failing["id"])
        names = {j["name"] for j in await call("list_jobs", state="all")}
        assert "broken" in names

        missing = await session.call_tool("show_job", {"job_id": 999999})
        assert missing.is_error
        assert "does not exist" in "".join(c.text for c in missing.content if c.type == "text")


def test_mcp_tools_end_to_end(make_gflow: type[Gflow]) -> None:
    gflow = make_gflow(fake_gpus="1x24G")
    gflow.start()
    asyncio.run(asyncio.wait_for(session_run(gflow), 60))
