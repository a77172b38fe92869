"""Translating between gflow and Slurm, purely: a job's request as sbatch options (and as
a whole sbatch script, for `gbatch --export-slurm`), the mark a Slurm job carries so a
restarted daemon finds it again, and a line of squeue (or a `scontrol show job -o`
record) as an observed state. No I/O, no clock: the backend (daemon/backends/slurm.py)
runs the commands and passes `now` in.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gflow.core.dependencies import DependencyKind, DependencyMode
from gflow.core.outcome import job_outcome, signal_name
from gflow.core.reasons import Reason, ReasonKind
from gflow.core.sbatch import Warning_
from gflow.core.spec import ALL_MEMORY, Resources
from gflow.core.states import JobState

MARK_PREFIX = "gflow"  # --comment=gflow:<store id>:<first job id>


@dataclass(frozen=True)
class SlurmSettings:
    """[slurm] in gflow.toml: where and as what jobs are submitted, and anything else."""

    partition: str = ""
    account: str = ""
    qos: str = ""
    extra: tuple[str, ...] = ()  # more sbatch options, as words (e.g. "--constraint=a100")


@dataclass(frozen=True)
class SbatchRequest:
    """What one sbatch call asks for: one job, or an array of gflow jobs as a Slurm array."""

    name: str
    resources: Resources
    workdir: str
    time_limit: int | None = None  # seconds
    begin_at: float | None = None
    hold: bool = False
    array_tasks: tuple[int, ...] = ()  # the tasks' ids; empty: not an array
    throttle: int | None = None  # at most this many tasks at once (%N)
    # (kind, Slurm id) of each parent, already translated to Slurm's ids
    dependencies: tuple[tuple[DependencyKind, str], ...] = ()
    dependency_mode: DependencyMode = DependencyMode.ALL
    comment: str = ""  # the mark (see `mark`)
    output: str = ""  # sbatch's own --output; empty: left to the script
    error: str = ""  # --error; empty: stderr goes with stdout
    append: bool = False  # --open-mode=append
    ntasks: int = 1
    signal: Warning_ | None = None  # --signal


def mark(store_id: str, job_id: int) -> str:
    """The comment that ties a Slurm job to this store's job (an array's first job)."""
    return f"{MARK_PREFIX}:{store_id}:{job_id}"


def parse_mark(comment: str, store_id: str) -> int | None:
    """The gflow job id a comment names, if it is this store's mark; else None (another
    store's job, or nobody's, is never adopted)."""
    parts = comment.strip().split(":")
    if len(parts) != 3 or parts[0] != MARK_PREFIX or parts[1] != store_id:
        return None
    return int(parts[2]) if parts[2].isdigit() else None


def slurm_minutes(seconds: int) -> tuple[int, str]:
    """Slurm counts time limits in whole minutes: round up, and say so when it changed."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes * 60 == seconds:
        return minutes, ""
    return minutes, f"time limit {seconds} s rounded up to {minutes} min (Slurm's unit)"


def _gres(res: Resources) -> str:
    model = f"{res.gpu_model}:" if res.gpu_model else ""
    return f"--gres=gpu:{model}{res.gpus}"


def sbatch_options(
    req: SbatchRequest, settings: SlurmSettings, now: float
) -> tuple[list[str], list[str]]:
    """sbatch's options for `req` (no script), and a note for each thing Slurm does not do
    as gflow would (rounded time limits, shared GPUs, pinned GPU indices)."""
    opts: list[str] = [f"--job-name={req.name or 'gflow'}", f"--chdir={req.workdir}"]
    notes: list[str] = []
    res = req.resources
    if res.gpus:
        opts.append(_gres(res))
    if res.shared or res.gpu_memory_mb:
        notes.append("Slurm has no shared GPUs: the job gets whole GPUs")
    if res.gpu_pin:
        notes.append("GPU indices are Slurm's to choose: --gpu pinning is not passed on")
    if res.cpus:
        opts.append(f"--cpus-per-task={res.cpus}")
    if res.memory_mb is not None:
        opts.append("--mem=0" if res.memory_mb == ALL_MEMORY else f"--mem={res.memory_mb}M")
    if res.exclusive:
        opts.append("--exclusive")
    if req.time_limit is not None:
        minutes, note = slurm_minutes(req.time_limit)
        opts.append(f"--time={minutes}")
        if note:
            notes.append(note)
    if req.begin_at is not None and req.begin_at > now:
        opts.append(f"--begin=now+{math.ceil(req.begin_at - now)}")
    if req.hold:
        opts.append("--hold")
    if req.array_tasks:
        spec = compress_ids(req.array_tasks)
        if req.throttle:
            spec += f"%{req.throttle}"
        opts.append(f"--array={spec}")
    if req.dependencies:
        sep = "?" if req.dependency_mode is DependencyMode.ANY else ","
        opts.append("--dependency=" + sep.join(f"{k.value}:{sid}" for k, sid in req.dependencies))
    if req.comment:
        opts.append(f"--comment={req.comment}")
    if req.output:
        opts.append(f"--output={req.output}")
    if req.error and req.error != req.output:
        opts.append(f"--error={req.error}")
    if req.append:
        opts.append("--open-mode=append")
    if req.ntasks > 1:
        opts.append(f"--ntasks={req.ntasks}")
    if req.signal is not None:
        w = req.signal
        opts.append(f"--signal={'B:' if w.batch_only else ''}{w.signum}@{w.seconds}")
    # Slurm must not rerun a job on its own: a rerun would be a second run of one record.
    opts.append("--no-requeue")
    for flag, value in (
        ("--partition", settings.partition),
        ("--account", settings.account),
        ("--qos", settings.qos),
    ):
        if value:
            opts.append(f"{flag}={value}")
    opts.extend(settings.extra)
    return opts, notes


def compress_ids(ids: Sequence[int]) -> str:
    """1,2,3,7 -> '1-3,7' (sbatch's --array list)."""
    out: list[str] = []
    ordered = sorted(set(ids))
    start = prev = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if value is not None:
            start = prev = value
    return ",".join(out)


def export_script(
    opts: Sequence[str],
    notes: Sequence[str],
    env: Mapping[str, str],
    body: str,
) -> str:
    """A standalone sbatch script: the directives, the submitter's environment (sbatch
    itself is told to export none of its own), and the command or the script's body."""
    lines = ["#!/bin/bash"]
    lines += [f"#SBATCH {opt}" for opt in opts if opt != "--no-requeue"]
    lines.append("#SBATCH --export=NONE")
    lines += [f"# note: {note}" for note in notes]
    lines.append("# the environment gbatch would have submitted with")
    for key in sorted(env):
        if key.isidentifier() and not key.startswith(("SLURM_", "BASH_FUNC_")):
            lines.append(f"export {key}={shlex.quote(env[key])}")
    lines.append("")
    lines.append(body.rstrip("\n"))
    return "\n".join(lines) + "\n"


def command_body(command: str, script_body: str, args: Sequence[str]) -> str:
    """What the exported script runs: the command, or the submitted script inline (run by
    its own interpreter from a here-document when it has a shebang that is not bash's)."""
    if not script_body:
        return command
    first = script_body.split("\n", 1)[0]
    if not first.startswith("#!") or "bash" in first or first.endswith("/sh"):
        rest = script_body.split("\n", 1)[1] if first.startswith("#!") else script_body
        prelude = f"set -- {shlex.join(args)}\n" if args else ""
        return prelude + rest
    interpreter = first[2:].strip()
    tag = "GFLOW_SCRIPT_EOF"
    return f"{interpreter} /dev/stdin {shlex.join(args)} <<'{tag}'\n{script_body}\n{tag}"


# ---- what Slurm says --------------------------------------------------------------------


class Phase(StrEnum):
    """Where Slurm has a job, in our terms."""

    PENDING = "pending"
    HELD = "held"
    RUNNING = "running"
    ENDED = "ended"


@dataclass(frozen=True)
class SlurmRow:
    """One job (or array task) as squeue or scontrol shows it; times as Slurm wrote them."""

    slurm_id: str  # "123" or "123_4"
    state: str  # Slurm's: PENDING, RUNNING, COMPLETED …
    reason: str
    start: str
    end: str
    node: str
    comment: str
    exit_code: str = ""  # "3:0" (code:signal), scontrol and sacct only


SQUEUE_FORMAT = "%i|%T|%r|%S|%e|%N|%k"  # comment last: it is ours, but may hold '|'


def parse_squeue(text: str) -> list[SlurmRow]:
    """`squeue -h -r -t all -o SQUEUE_FORMAT` output."""
    rows = []
    for line in text.splitlines():
        parts = line.split("|", 6)
        if len(parts) == 7:
            rows.append(SlurmRow(*(p.strip() for p in parts)))
    return rows


def parse_scontrol(text: str) -> list[SlurmRow]:
    """`scontrol show job -o` output: one `Key=Value …` record a line (array tasks too)."""
    rows = []
    for line in text.splitlines():
        fields = _scontrol_fields(line)
        if "JobId" not in fields:
            continue
        task = fields.get("ArrayTaskId", "")
        slurm_id = fields["JobId"]
        if fields.get("ArrayJobId") and task and task.isdigit():
            slurm_id = f"{fields['ArrayJobId']}_{task}"
        rows.append(
            SlurmRow(
                slurm_id,
                fields.get("JobState", ""),
                fields.get("Reason", ""),
                fields.get("StartTime", ""),
                fields.get("EndTime", ""),
                fields.get("NodeList", ""),
                fields.get("Comment", ""),
                fields.get("ExitCode", ""),
            )
        )
    return rows


def _scontrol_fields(line: str) -> dict[str, str]:
    """Key=Value words; a value with spaces (Comment, Command) runs on to the next Key=."""
    fields: dict[str, str] = {}
    key = ""
    for word in line.split(" "):
        name, eq, value = word.partition("=")
        if eq and name and name.replace("/", "").replace(":", "").isalnum():
            key = name
            fields[key] = value
        elif key:
            fields[key] += " " + word
    return fields


def parse_sacct(text: str) -> list[SlurmRow]:
    """`sacct -n -P -o jobid,state,exitcode,start,end,nodelist,comment` output (a step's
    line, like `12.batch`, is skipped: the job's own line says how it ended)."""
    rows = []
    for line in text.splitlines():
        parts = line.split("|", 6)
        if len(parts) < 6 or "." in parts[0]:
            continue
        comment = parts[6] if len(parts) == 7 else ""
        state = parts[1].split(" ")[0]  # "CANCELLED by 0"
        rows.append(SlurmRow(parts[0], state, "", parts[3], parts[4], parts[5], comment, parts[2]))
    return rows


_RUNNING = {"CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING",
            "STAGE_OUT", "RESIZING"}  # fmt: skip
_ENDED = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL",
          "BOOT_FAIL", "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "REVOKED"}  # fmt: skip
_HELD_REASONS = {"JobHeldUser", "JobHeldAdmin"}

# Slurm's reasons for waiting, as ours (anything else: Slurm:<its reason>).
_WAIT_REASONS = {
    "Resources": Reason(ReasonKind.RESOURCES),
    "Priority": Reason(ReasonKind.PRIORITY),
    "Dependency": Reason(ReasonKind.DEPENDENCY),
    "BeginTime": Reason(ReasonKind.BEGIN_TIME),
    "JobArrayTaskLimit": Reason(ReasonKind.GROUP_LIMIT),
    "JobHeldUser": Reason(ReasonKind.HELD),
    "JobHeldAdmin": Reason(ReasonKind.HELD, "admin"),
}


def phase_of(row: SlurmRow) -> Phase:
    state = row.state.split(" ")[0].rstrip("+")
    if state in _ENDED:
        return Phase.ENDED
    if state in _RUNNING:
        return Phase.RUNNING
    if row.reason in _HELD_REASONS:
        return Phase.HELD
    return Phase.PENDING


def wait_reason(row: SlurmRow) -> Reason | None:
    """Why a pending job waits, in our words; None when Slurm has not looked at it yet."""
    if row.reason in ("", "None"):
        return None
    known = _WAIT_REASONS.get(row.reason)
    if known is not None:
        return known
    if row.reason.startswith(("QOS", "AssocGrp", "AssocMax")):
        return Reason(ReasonKind.QUOTA, row.reason)
    return Reason(ReasonKind.SLURM, row.reason)


def never_runs(row: SlurmRow) -> bool:
    """Slurm leaves such a job pending for good (its afterok parent failed)."""
    return row.reason == "DependencyNeverSatisfied"


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """Slurm's 'code:signal' (e.g. '3:0', '0:9') as (exit code, signal)."""
    code, _, sig = text.partition(":")
    if not code.isdigit():
        return None, None
    signum = int(sig) if sig.isdigit() and int(sig) > 0 else None
    return (None if signum else int(code)), signum


_STOPPED_BY = {
    "TIMEOUT": ReasonKind.TIME_LIMIT,
    "DEADLINE": ReasonKind.TIME_LIMIT,
    "CANCELLED": ReasonKind.CANCELLED_BY_USER,
    "OUT_OF_MEMORY": ReasonKind.MEMORY_LIMIT,
}
_MACHINE_FAILED = {"NODE_FAIL", "BOOT_FAIL", "PREEMPTED", "REVOKED"}


@dataclass(frozen=True)
class WrapperEnd:
    """What our wrapper's exit record (written inside the Slurm job) says, if there is one."""

    exit_code: int | None
    signal: int | None
    timed_out: bool = False
    launch_failed: bool = False


def ended_outcome(
    row: SlurmRow, record: WrapperEnd | None, stop_reason: ReasonKind | None
) -> tuple[JobState, Reason, int | None, int | None]:
    """The final state, reason, exit code and signal of a job Slurm says has ended: Slurm
    says why it stopped (time limit, cancel, memory, node), our wrapper's record says how
    the command ended; without a record, Slurm's exit code stands in."""
    state = row.state.split(" ")[0].rstrip("+")
    if state in _MACHINE_FAILED:
        code = record.exit_code if record else None
        return JobState.FAILED, Reason(ReasonKind.NODE_FAIL, state.lower()), code, None
    why = _STOPPED_BY.get(state, stop_reason if stop_reason is not ReasonKind.STOPPING else None)
    if state == "COMPLETED" and why is ReasonKind.CANCELLED_BY_USER:
        why = None  # it ended on its own before the cancel reached it
    if record is not None:
        ended, reason = job_outcome(
            why, record.exit_code, record.signal, True, False, record.launch_failed
        )
        return ended, reason, record.exit_code, record.signal
    code, signum = parse_exit_code(row.exit_code)
    if why is not None:
        ended, reason = job_outcome(why, code, signum, True)
        return ended, reason, code, signum
    if state == "COMPLETED":
        return JobState.FINISHED, Reason(ReasonKind.COMPLETED), 0, None
    if signum is not None:
        return JobState.FAILED, Reason(ReasonKind.SIGNAL, signal_name(signum)), None, signum
    if code:
        return JobState.FAILED, Reason(ReasonKind.NON_ZERO_EXIT, str(code)), code, None
    return JobState.FAILED, Reason(ReasonKind.LOST, state.lower() or "slurm"), code, None
