"""What a submitter asks for: the resources a job needs (Resources) and a validated
request to create one (JobSpec), checked once, in the daemon, before anything is stored.
Every check of the API's request fields is here, each with a message the user can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from gflow.core.batch import NO_BATCH, BatchOptions
from gflow.core.dependencies import Dependency, DependencyKind, DependencyMode
from gflow.core.errors import InvalidInput
from gflow.core.limits import (
    DEFAULT_PRIORITY,
    MAX_ARG_STRLEN,
    MAX_COMMAND_LENGTH,
    MAX_GPUS,
    MAX_JOB_ID,
    MAX_NAME_LENGTH,
    MAX_PRIORITY,
    MAX_SIZE_MB,
    MAX_TIME_LIMIT,
    POINTER_BYTES,
)
from gflow.core.parse import parse_dependency_ref

MAX_CONCURRENT = 1_000_000
MAX_RETRIES = 100
MAX_CPUS = 4096
ALL_MEMORY = 0  # memory_mb of --mem=0: the whole machine's RAM, as in Slurm


class Resources(NamedTuple):
    """What a job needs to start: GPUs (whole, or shared by declared memory) and host RAM.

    A NamedTuple (immutable, hashed and compared in C): the scheduler looks requests up
    by value thousands of times per pass.
    """

    gpus: int = 0
    shared: bool = False  # share GPUs with other shared jobs by declared memory
    gpu_memory_mb: int | None = None  # per GPU
    gpu_pin: tuple[int, ...] = ()  # these GPUs exactly (Taskflow's --gpu IDX:SIZE)
    memory_mb: int | None = None  # host RAM; ALL_MEMORY (0): the whole machine's
    cpus: int = 0  # CPU cores booked and pinned; 0: none asked for (any core, unbooked)
    exclusive: bool = False  # every GPU and core of the machine, nothing beside it
    gpu_model: str = ""  # only GPUs whose name contains this (Slurm's gpu:a100:2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Resources:
        gpus = _ranged(data, "gpus", 0, 0, MAX_GPUS)
        pin = tuple(_get(data, "gpu_pin", list, []))
        if not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < MAX_GPUS for i in pin
        ) or len(set(pin)) != len(pin):
            raise InvalidInput("gpu_pin must list distinct GPU indices")
        if pin:
            gpus = len(pin)
        shared = _get(data, "shared", bool, False)
        gpu_memory = _size(data, "gpu_memory_mb")
        if shared and (gpus == 0 or gpu_memory is None):
            raise InvalidInput(
                "a shared GPU job needs --gpus and --gpu-memory",
                hint="e.g. --gpus 1 --shared --gpu-memory 10G",
            )
        if gpu_memory is not None and gpus == 0:
            raise InvalidInput("--gpu-memory needs --gpus (or --gpu IDX:SIZE)")
        memory = _get(data, "memory_mb", int, None)
        if memory != ALL_MEMORY:
            memory = _size(data, "memory_mb")
        model = _get(data, "gpu_model", str, "")
        if not re.fullmatch(r"[\w.+-]{0,64}", model):
            raise InvalidInput(f"invalid GPU type {model[:70]!r}", hint="e.g. a100, rtx_3090")
        return cls(
            gpus,
            shared,
            gpu_memory,
            pin,
            memory,
            _ranged(data, "cpus", 0, 0, MAX_CPUS),
            _get(data, "exclusive", bool, False),
            model,
        )


NO_RESOURCES = Resources()


@dataclass(frozen=True)
class JobSpec:
    """What a submitter asks for: validated once, in the daemon, before anything is stored."""

    command: str  # a shell string run with bash -c; empty in script mode
    script: str  # absolute path of the submitted script; empty in command mode
    workdir: str
    env: dict[str, str]
    name: str = ""
    priority: int = DEFAULT_PRIORITY
    resources: Resources = NO_RESOURCES
    time_limit: int | None = None  # seconds
    dependencies: tuple[Dependency, ...] = ()
    dependency_mode: DependencyMode = DependencyMode.ALL
    auto_cancel: bool = True  # cancel this job when its dependencies can no longer be met
    begin_at: float | None = None  # do not start before (Unix time)
    max_concurrent: int | None = None  # at most this many of the submission's jobs running
    conda_env: str = ""  # activated with conda's shell hook before the command
    max_retries: int = 0  # requeue a failed job this many times, as new attempts
    retry_on_timeout: bool = False  # a Timeout is retried too
    project: str = ""  # a project code, for filtering and accounting
    hold: bool = False
    keep_session: bool = False
    array_task_id: int | None = None
    script_body: str = ""  # the script as it was at submission (Slurm copies it too)
    batch: BatchOptions = NO_BATCH  # arguments, output files, --signal, Slurm task layout
    singleton: bool = False  # Slurm's --dependency=singleton: after my jobs of this name
    notify_email: str = ""  # --notify-email / --mail-user: e-mail this address …
    notify_on: str = ""  # … on these notification names (comma list; default "ended")

    @classmethod
    def from_dict(cls, data: Any) -> JobSpec:
        """Check every field's type and range; the API takes nothing else."""
        if not isinstance(data, dict):
            raise InvalidInput("a job must be a JSON object")
        unknown = set(data) - _SPEC_FIELDS
        if unknown:
            raise InvalidInput(f"unknown job field(s): {', '.join(sorted(map(str, unknown)))}")
        command, script, script_body, env = _what_to_run(data)
        name = _get(data, "name", str, "")
        if len(name) > MAX_NAME_LENGTH or any(not c.isprintable() for c in name):
            raise InvalidInput(f"invalid job name {name[:40]!r}: printable, at most 200 characters")
        time_limit = _get(data, "time_limit", int, None)
        if time_limit is not None and not 0 < time_limit <= MAX_TIME_LIMIT:
            raise InvalidInput(f"invalid time limit {time_limit}: 1 s to 10 years")
        task = _get(data, "array_task_id", int, None)
        if task is not None and not 0 <= task <= MAX_JOB_ID:
            raise InvalidInput(f"invalid array task id {task}")
        begin_at = _get(data, "begin_at", (int, float), None)
        if begin_at is not None and not 0 <= begin_at < 2**40:
            raise InvalidInput(f"invalid begin time {begin_at}")
        max_concurrent = _get(data, "max_concurrent", int, None)
        if max_concurrent is not None and not 0 < max_concurrent <= MAX_CONCURRENT:
            raise InvalidInput(f"invalid max_concurrent {max_concurrent}: 1 or more")
        workdir = _get(data, "workdir", str, "")
        if not workdir.startswith("/") or "\0" in workdir:
            raise InvalidInput("workdir must be an absolute path (without NUL characters)")
        return cls(
            command=command,
            script=script,
            workdir=workdir,
            env=env,
            name=name,
            priority=_ranged(data, "priority", DEFAULT_PRIORITY, 0, MAX_PRIORITY),
            resources=Resources.from_dict(data),
            time_limit=time_limit,
            dependencies=_dependencies(data),
            dependency_mode=_enum(data, "dependency_mode", DependencyMode, DependencyMode.ALL),
            auto_cancel=_get(data, "auto_cancel", bool, True),
            begin_at=float(begin_at) if begin_at is not None else None,
            max_concurrent=max_concurrent,
            conda_env=_conda_env(data),
            max_retries=_ranged(data, "max_retries", 0, 0, MAX_RETRIES),
            retry_on_timeout=_get(data, "retry_on_timeout", bool, False),
            project=_project(data),
            hold=_get(data, "hold", bool, False),
            keep_session=_get(data, "keep_session", bool, False),
            array_task_id=task,
            script_body=script_body,
            batch=BatchOptions.from_dict(data.get("batch", {})),
            singleton=_get(data, "singleton", bool, False),
            **_notify(data),
        )


_SPEC_FIELDS = frozenset(
    {
        "command",
        "script",
        "script_body",
        "workdir",
        "env",
        "name",
        "priority",
        "gpus",
        "shared",
        "gpu_memory_mb",
        "gpu_pin",
        "memory_mb",
        "time_limit",
        "dependencies",
        "dependency_mode",
        "auto_cancel",
        "begin_at",
        "max_concurrent",
        "hold",
        "keep_session",
        "array_task_id",
        "conda_env",
        "max_retries",
        "retry_on_timeout",
        "project",
        "cpus",
        "exclusive",
        "gpu_model",
        "batch",
        "singleton",
        "notify_email",
        "notify_on",
    }
)


def _notify(data: dict[str, Any]) -> dict[str, str]:
    """--notify-email ADDR --notify-on started,ended,failed (default ended)."""
    from gflow.core.notify import parse_notify_on  # the daemon's side only

    email = _get(data, "notify_email", str, "").strip()
    on = _get(data, "notify_on", str, "").strip()
    if not email:
        if on:
            raise InvalidInput("--notify-on needs --notify-email (or --mail-user)")
        return {}
    if (
        len(email) > 254
        or "@" not in email
        or any(c.isspace() or not c.isprintable() for c in email)
    ):
        raise InvalidInput(f"invalid e-mail address {email[:60]!r}", hint="e.g. me@example.org")
    names = parse_notify_on(on or "ended")
    return {"notify_email": email, "notify_on": ",".join(sorted(names))}


def _what_to_run(data: dict[str, Any]) -> tuple[str, str, str, dict[str, str]]:
    command = _get(data, "command", str, "")
    script = _get(data, "script", str, "")
    script_body = _get(data, "script_body", str, "")
    if bool(command.strip()) == bool(script):
        raise InvalidInput("give exactly one of a command or a script")
    if script and not script.startswith("/"):
        raise InvalidInput("script must be an absolute path")
    if max(len(command), len(script_body)) > MAX_COMMAND_LENGTH:
        raise InvalidInput("the command or script is too long (1 MB at most)")
    if len(command.encode(errors="surrogatepass")) >= MAX_ARG_STRLEN:
        raise InvalidInput(
            f"the command is {len(command.encode(errors='surrogatepass')):,} bytes: "
            f"too long for one argument of a program ({MAX_ARG_STRLEN // 1024} KiB at most)",
            hint="put it in a script file and submit that",
        )
    env = _get(data, "env", dict, {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise InvalidInput("env must map strings to strings")
    # The names and the values joined once (loops in C): every job of an array carries them.
    names, values = "".join(env), "".join(env.values())
    if "" in env or "=" in names:
        raise InvalidInput("env: variable names must be non-empty and without '='")
    if not (_unicode(command) and _unicode(script) and _unicode(script_body)):
        raise InvalidInput("the command or script has a lone surrogate: not Unicode text")
    if not (_os_bytes(names) and _os_bytes(values)):
        bad = next(k for k, v in env.items() if not (_os_bytes(k) and _os_bytes(v)))
        raise InvalidInput(f"env variable {bad[:60]!r} holds a character no byte stands for")
    if any("\0" in t for t in (command, script, script_body, names, values)):
        raise InvalidInput("NUL characters are not allowed in a command, script or env")
    return command, script, script_body, env


_SURROGATE = re.compile("[\ud800-\udfff]")
# What os.environ makes of a byte that is not UTF-8 (PEP 383, surrogateescape): the job gets
# that byte back, exactly. Other lone surrogates stand for no byte at all.
_NOT_A_BYTE = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def _unicode(text: str) -> bool:
    """Encodable as UTF-8: JSON can carry a lone surrogate ('\\ud800'); SQLite, a job's
    files and its command line cannot."""
    return text.isascii() or _SURROGATE.search(text) is None


def _os_bytes(text: str) -> bool:
    """Environments are bytes on Linux: a variable that was not UTF-8 arrives as
    surrogate-escaped text and is stored and passed on as exactly those bytes."""
    return text.isascii() or _NOT_A_BYTE.search(text) is None


def exec_size_problem(env: dict[str, str], argv_bytes: int, limit: int) -> str | None:
    """Why a program given this environment (and `argv_bytes` of arguments) could not be
    started at all (execve's E2BIG), or None: each variable within MAX_ARG_STRLEN, and all
    strings with their pointers within `limit`, which the stack limit sets."""
    total = argv_bytes
    biggest, biggest_size = "", 0
    for name, value in env.items():
        size = len(name.encode(errors="surrogateescape")) + len(
            value.encode(errors="surrogateescape")
        )
        size += 2  # '=' and the terminating NUL
        if size > biggest_size:
            biggest, biggest_size = name, size
        total += size + POINTER_BYTES
    if biggest_size > MAX_ARG_STRLEN:
        return (
            f"env variable {biggest[:60]} is {biggest_size:,} bytes; a program can be given "
            f"at most {MAX_ARG_STRLEN // 1024} KiB in one variable"
        )
    if total > limit:
        return (
            f"the environment is {total:,} bytes (largest: {biggest[:60]}, {biggest_size:,}); "
            f"a program can be started with at most {limit:,} of environment and arguments"
        )
    return None


def _project(data: dict[str, Any]) -> str:
    project: str = _get(data, "project", str, "").strip()
    if len(project) > 64 or any(not c.isprintable() or c == "," for c in project):
        raise InvalidInput(
            f"invalid project {project[:70]!r}", hint="at most 64 printable characters"
        )
    return project


_CONDA_NAME = re.compile(r"[A-Za-z0-9_.+][A-Za-z0-9_.+-]{0,199}")
_CONDA_PATH = re.compile(r"/[^\x00-\x1f\x7f]{0,1000}")


def _conda_env(data: dict[str, Any]) -> str:
    """A name (letters, digits, `_ . + -`) or an absolute path of printable characters.
    Either way it reaches the shell as one quoted word (launcher.conda_prelude)."""
    name: str = _get(data, "conda_env", str, "")
    if name and not (_CONDA_NAME.fullmatch(name) or _CONDA_PATH.fullmatch(name)):
        raise InvalidInput(
            f"invalid conda environment {name[:60]!r}",
            hint="a name (letters, digits, _ . + -) or an absolute path",
        )
    return name


def _dependencies(data: dict[str, Any]) -> tuple[Dependency, ...]:
    deps = []
    for item in _get(data, "dependencies", list, []):
        if not isinstance(item, dict) or set(item) - {"job", "kind", "array"} or "job" not in item:
            raise InvalidInput('each dependency is {"job": ID or "@~N", "kind": "afterok"}')
        ref = item["job"]
        if isinstance(ref, bool) or not isinstance(ref, int | str):
            raise InvalidInput("a dependency's job is an id or '@' / '@~N'")
        job = parse_dependency_ref(str(ref)) if isinstance(ref, str) else ref
        if isinstance(job, int) and not 0 < job <= MAX_JOB_ID:
            raise InvalidInput(f"invalid dependency {job}")
        kind = _enum(item, "kind", DependencyKind, DependencyKind.AFTER_OK)
        deps.append(Dependency(job, kind, _get(item, "array", bool, False)))
    return tuple(deps)


def _get(data: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(key, default)
    if value is None and default is None:
        return None
    # bool is an int in Python; a JSON true is not a valid priority.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        name = kind.__name__ if isinstance(kind, type) else "number"
        raise InvalidInput(f"field {key!r} must be {name}, not {type(value).__name__}")
    if isinstance(value, str) and not _unicode(value):
        raise InvalidInput(f"field {key!r} has a lone surrogate ({value[:40]!r}): not Unicode text")
    return value


def _ranged(data: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value: int = _get(data, key, int, default)
    if not lo <= value <= hi:
        raise InvalidInput(f"invalid {key} {value}: must be between {lo} and {hi}")
    return value


def _size(data: dict[str, Any], key: str) -> int | None:
    value: int | None = _get(data, key, int, None)
    if value is not None and not 0 < value <= MAX_SIZE_MB:
        raise InvalidInput(f"invalid {key} {value}: 1 MB to 1024 TB")
    return value


def _enum(data: dict[str, Any], key: str, kind: Any, default: Any) -> Any:
    value = _get(data, key, str, default.value)
    try:
        return kind(value)
    except ValueError:
        valid = ", ".join(member.value for member in kind)
        raise InvalidInput(f"invalid {key} {value!r}", hint=f"use one of {valid}") from None
