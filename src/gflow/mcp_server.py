"""gflow-mcp: a Model Context Protocol server over stdio, for coding agents.

Optional (`pip install 'gflow-py[mcp]'`). It acts as the Unix user who runs it, through
the same Unix socket and HTTP API as the CLI: the daemon decides what that user may do.
Tools: list, show, read the log of, submit (with a dry run), cancel, hold, release and
triage jobs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gflow.client import Client
from gflow.core.errors import GflowError
from gflow.core.parse import parse_size_mb, parse_time_limit
from gflow.core.triage import diagnose
from gflow.paths import Paths

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

LOG_TAIL_BYTES = 64 * 1024
SUMMARY = ("id", "name", "state", "reason", "user", "gpus", "exit_code", "signal",
           "submitted_at", "started_at", "finished_at", "project")  # fmt: skip


def _client() -> Client:
    return Client(Paths.from_env())


def _summary(job: dict[str, Any]) -> dict[str, Any]:
    return {k: job.get(k) for k in SUMMARY}


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - LOG_TAIL_BYTES))
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def list_jobs(state: str = "", user: str = "", limit: int = 50) -> list[dict[str, Any]]:
    """Jobs, newest last: active ones by default; state='all' or e.g. 'Failed,Timeout';
    user='all' for everyone's."""
    query: dict[str, str] = {"user": user}
    if state.lower() == "all":
        query["all"] = "1"
    elif state:
        query["states"] = state
    jobs = _client().list_jobs(**query)
    return [_summary(j) for j in jobs[-max(1, min(limit, 1000)) :]]


def show_job(job_id: int) -> dict[str, Any]:
    """Every field of one job, with its events."""
    shown = _client().show_job(job_id)
    job = dict(shown["job"])
    job.pop("env", None)
    return {"job": job, "events": shown.get("events", [])}


def job_log(job_id: int, lines: int = 100) -> str:
    """The last `lines` lines of the job's output."""
    job = _client().show_job(job_id)["job"]
    return _tail(job["log_path"], max(1, min(lines, 5000)))


def submit_job(
    command: str,
    name: str = "",
    workdir: str = "",
    gpus: int = 0,
    time_limit: str = "",
    memory: str = "",
    priority: int = 10,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Submit a shell command as a job (as gbatch does). time_limit like '2h' or '30m',
    memory like '16G'. dry_run: say whether and when it could start; store nothing."""
    spec: dict[str, Any] = {
        "command": command,
        "workdir": str(Path(workdir or os.getcwd()).resolve()),
        "env": dict(os.environ),
        "name": name,
        "priority": priority,
    }
    if gpus:
        spec["gpus"] = gpus
    if time_limit:
        spec["time_limit"] = parse_time_limit(time_limit)
    if memory:
        spec["memory_mb"] = parse_size_mb(memory)
    client = _client()
    if dry_run:
        answer: dict[str, Any] = client.request("POST", "/jobs/test", {"jobs": [spec]})
        return answer
    return _summary(client.submit([spec])[0])


def _act(job_id: int, action: str) -> dict[str, Any]:
    return _summary(_client().job_action(job_id, action))


def cancel_job(job_id: int) -> dict[str, Any]:
    """Cancel a queued, held or running job."""
    return _act(job_id, "cancel")


def hold_job(job_id: int) -> dict[str, Any]:
    """Hold a queued job (it will not start until released)."""
    return _act(job_id, "hold")


def release_job(job_id: int) -> dict[str, Any]:
    """Release a held job."""
    return _act(job_id, "release")


def triage_job(job_id: int) -> dict[str, Any]:
    """Why did it end as it did: state, reason, exit code or signal, the log's tail and
    the likely cause (OOM, CUDA out of memory, a missing module, the time limit …)."""
    job = _client().show_job(job_id)["job"]
    tail = _tail(job["log_path"], 40)
    return {
        **_summary(job),
        "time_limit": job.get("time_limit"),
        "log_tail": tail,
        "likely_causes": diagnose(job, tail),
    }


TOOLS = (list_jobs, show_job, job_log, submit_job, cancel_job, hold_job, release_job, triage_job)


def build_server() -> MCPServer[Any]:
    from mcp.server.mcpserver import MCPServer

    server: MCPServer[Any] = MCPServer(
        "gflow",
        instructions="Submit and inspect jobs in the gflow queue on this machine, as the "
        "user who runs this server.",
    )
    for tool in TOOLS:
        server.tool()(_reporting(tool))
    return server


def _reporting(tool: Any) -> Any:
    """A daemon error reaches the agent as the one-line message a user would read."""
    import functools

    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(tool)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return tool(*args, **kwargs)
        except GflowError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            raise ToolError(f"{exc.message}{hint}") from None

    return call


def main() -> None:
    try:
        server = build_server()
    except ImportError as exc:
        print(
            f"gflow-mcp: the mcp package is missing ({exc.name}): pip install 'gflow-py[mcp]'",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    server.run("stdio")
