"""What a batch job asks for beyond resources, and what it sees when it runs, as in Slurm:
its arguments, `--output`/`--error` file patterns, `--signal` before the time limit, its
task layout, and the `SLURM_*` variables a Slurm job would have on one machine.

Pure: the daemon passes in the host name, the clock's answers and the job's allocation.
Kept with the job's environment (read only when it starts), not in its row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gflow.core.errors import InvalidInput
from gflow.core.sbatch import ArrayInfo, Warning_


@dataclass(frozen=True)
class BatchOptions:
    """The Slurm-shaped part of a request that matters only when the job runs."""

    args: tuple[str, ...] = ()  # the script's $1 …
    output: str = ""  # file pattern (%j %x …), relative to the submit directory
    error: str = ""  # same; empty: stderr goes with stdout
    append: bool = False  # --open-mode=append
    warning: Warning_ | None = None  # --signal
    ntasks: int = 1
    cpus_per_task: int = 0  # 0: not asked for
    submit_dir: str = ""
    array: ArrayInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        w, a = self.warning, self.array
        return {
            "args": list(self.args),
            "output": self.output,
            "error": self.error,
            "append": self.append,
            "signal": None if w is None else [w.signum, w.seconds, w.batch_only],
            "ntasks": self.ntasks,
            "cpus_per_task": self.cpus_per_task,
            "submit_dir": self.submit_dir,
            "array": None if a is None else [a.min, a.max, a.tasks, a.step],
        }

    @classmethod
    def from_dict(cls, data: Any) -> BatchOptions:
        """Validate the API's `batch` object (every field optional)."""
        if not isinstance(data, dict) or set(data) - _FIELDS:
            raise InvalidInput(f"batch must be an object with fields {', '.join(sorted(_FIELDS))}")
        args = data.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise InvalidInput("batch.args must be a list of strings")
        if sum(map(len, args)) > MAX_ARGS_LENGTH or any("\0" in a for a in args):
            raise InvalidInput("the script's arguments are too long or hold NUL characters")
        texts = [data.get(key, "") for key in ("output", "error", "submit_dir")]
        if not all(isinstance(t, str) and len(t) < 4096 and t.isprintable() for t in texts):
            raise InvalidInput("--output, --error and the submit directory must be printable paths")
        return cls(
            args=tuple(args),
            output=texts[0],
            error=texts[1],
            append=_flag(data, "append"),
            warning=_warning(data.get("signal")),
            ntasks=_count(data, "ntasks", 1),
            cpus_per_task=_count(data, "cpus_per_task", 0, lo=0),
            submit_dir=texts[2],
            array=_array(data.get("array")),
        )


MAX_ARGS_LENGTH = 100_000
_FIELDS = frozenset(BatchOptions().to_dict())
NO_BATCH = BatchOptions()


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"batch.{key} must be true or false")
    return value


def _count(data: dict[str, Any], key: str, default: int, lo: int = 1) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= 100_000:
        raise InvalidInput(f"batch.{key} must be a whole number from {lo} to 100000")
    return value


def _ints(value: Any, n: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == n
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31 for v in value)
    )


def _warning(value: Any) -> Warning_ | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 3 and _ints(value[:2], 2)):
        raise InvalidInput("batch.signal must be [signal number, seconds, batch only]")
    if not 0 < value[0] < 65 or not isinstance(value[2], bool):
        raise InvalidInput("batch.signal must be [signal number, seconds, batch only]")
    return Warning_(value[0], value[1], value[2])


def _array(value: Any) -> ArrayInfo | None:
    if value is None:
        return None
    if not _ints(value, 4):
        raise InvalidInput("batch.array must be [min, max, count, step]")
    return ArrayInfo(*value)


@dataclass(frozen=True)
class RunningAs:
    """What a job is when it starts: the facts its file names and variables come from."""

    job_id: int
    name: str
    user: str
    uid: int
    host: str
    array_job_id: int | None  # the id of the array's first job
    array_task_id: int | None
    cpus: int  # cores booked (0: none asked for)
    cpus_on_node: int  # cores it may run on
    gpu_ids: tuple[int, ...]
    memory_mb: int | None  # booked host RAM (the machine's for --mem=0)
    started_at: float
    time_limit: int | None
    attempt: int


_PATTERN = re.compile(r"%(%|[0-9]*[jxAauNnst])")


def expand_filename(pattern: str, job: RunningAs) -> str:
    """Slurm's filename pattern: %j job id, %x name, %A array's first job id, %a task id,
    %u user, %N / %n host / node 0, %s / %t step 0 / task 0, %% a percent sign; %5j pads."""

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code == "%":
            return "%"
        width, letter = code[:-1], code[-1]
        array_id = job.array_job_id if job.array_job_id is not None else job.job_id
        task = job.array_task_id
        value = {
            "j": str(job.job_id),
            "x": job.name,
            "A": str(array_id if task is not None else job.job_id),
            "a": str(task) if task is not None else "4294967294",  # Slurm's NO_VAL
            "u": job.user,
            "N": job.host,
            "n": "0",
            "s": "batch",
            "t": "0",
        }[letter]
        return value.zfill(int(width)) if width and value.isdigit() else value

    return _PATTERN.sub(one, pattern)


def slurm_environment(job: RunningAs, batch: BatchOptions) -> dict[str, str]:
    """The SLURM_* variables of a batch job's shell, with their meaning on one machine."""
    cpus = job.cpus or job.cpus_on_node
    env = {
        "SLURM_JOB_ID": str(job.job_id),
        "SLURM_JOBID": str(job.job_id),
        "SLURM_JOB_NAME": job.name,
        "SLURM_JOB_USER": job.user,
        "SLURM_JOB_UID": str(job.uid),
        "SLURM_SUBMIT_DIR": batch.submit_dir,
        "SLURM_SUBMIT_HOST": job.host,
        "SLURM_CLUSTER_NAME": job.host,
        "SLURM_JOB_PARTITION": "gflow",
        "SLURM_JOB_NODELIST": job.host,
        "SLURM_NODELIST": job.host,
        "SLURMD_NODENAME": job.host,
        "SLURM_TOPOLOGY_ADDR": job.host,
        "SLURM_NNODES": "1",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NODEID": "0",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NTASKS": str(batch.ntasks),
        "SLURM_NPROCS": str(batch.ntasks),
        "SLURM_TASKS_PER_NODE": str(batch.ntasks),
        "SLURM_NTASKS_PER_NODE": str(batch.ntasks),
        "SLURM_CPUS_ON_NODE": str(cpus),
        "SLURM_JOB_CPUS_PER_NODE": str(cpus),
        "SLURM_GPUS_ON_NODE": str(len(job.gpu_ids)),
        "SLURM_RESTART_COUNT": str(job.attempt - 1),
        "SLURM_JOB_START_TIME": str(int(job.started_at)),
    }
    if batch.cpus_per_task:
        env["SLURM_CPUS_PER_TASK"] = str(batch.cpus_per_task)
    if job.gpu_ids:
        env["SLURM_JOB_GPUS"] = ",".join(map(str, job.gpu_ids))
    if job.memory_mb:
        env["SLURM_MEM_PER_NODE"] = str(job.memory_mb)
    if job.time_limit:
        env["SLURM_JOB_END_TIME"] = str(int(job.started_at + job.time_limit))
    if job.array_task_id is not None:
        env["SLURM_ARRAY_JOB_ID"] = str(job.array_job_id or job.job_id)
        env["SLURM_ARRAY_TASK_ID"] = str(job.array_task_id)
        if batch.array is not None:
            env["SLURM_ARRAY_TASK_MIN"] = str(batch.array.min)
            env["SLURM_ARRAY_TASK_MAX"] = str(batch.array.max)
            env["SLURM_ARRAY_TASK_COUNT"] = str(batch.array.tasks)
            env["SLURM_ARRAY_TASK_STEP"] = str(batch.array.step)
    return env
