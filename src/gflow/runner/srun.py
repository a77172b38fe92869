"""gflow's `srun`: inside a gflow job, run a command within the job's allocation.

Copied to <state>/bin/srun with this interpreter's shebang and put first on every job's
PATH (runner only: stdlib, nothing of gflow imported). Options are checked against the
allocation the job's SLURM_* variables describe: more tasks x CPUs than the job holds, more
GPUs, or more than one node is refused as Slurm refuses it. `-n N` runs N copies with
SLURM_PROCID / SLURM_LOCALID 0..N-1 and exits with the highest exit status; one task is
exec'd, so signals and the exit code are the command's own.

Copied as <state>/bin/scontrol too, for the one thing launcher scripts ask of it inside a
job: `scontrol show hostnames [LIST]` (torchrun's MASTER_ADDR). Anything else goes to a
real scontrol further along PATH, if there is one.
"""

from __future__ import annotations

import os
import sys

# long option -> takes a value; the ones srun scripts use, the rest accepted as no-ops
_WITH_VALUE = {
    "ntasks", "cpus-per-task", "nodes", "gpus", "gres", "gpus-per-task", "gpus-per-node",
    "ntasks-per-node", "job-name", "output", "error", "input", "mpi", "export", "cpu-bind",
    "mem", "mem-per-cpu", "mem-per-gpu", "time", "distribution", "partition", "account",
    "kill-on-bad-exit", "label", "nodelist", "exclude", "gpu-bind", "chdir", "het-group",
    "hint", "constraint", "qos", "wait", "signal", "threads-per-core", "ntasks-per-gpu",
    "cpus-per-gpu", "mem-bind", "propagate", "container", "network", "reservation",
    "ntasks-per-socket", "sockets-per-node", "cores-per-socket",
}  # fmt: skip
_SHORT = {"n": "ntasks", "c": "cpus-per-task", "N": "nodes", "G": "gpus", "J": "job-name",
          "o": "output", "e": "error", "i": "input", "t": "time", "m": "distribution",
          "p": "partition", "A": "account", "w": "nodelist", "x": "exclude", "D": "chdir",
          "W": "wait", "C": "constraint", "q": "qos"}  # fmt: skip
_FLAGS = {"l": "label", "u": "unbuffered", "K": "kill-on-bad-exit", "v": "verbose",
          "Q": "quiet", "X": "disable-status", "k": "no-kill", "E": "preserve-env",
          "s": "oversubscribe", "O": "overcommit", "h": "help"}  # fmt: skip
_OPTIONAL = {"exclusive", "overlap", "kill-on-bad-exit", "label", "pty", "whole", "exact"}


def fail(message: str) -> None:
    sys.stderr.write(f"srun: error: {message}\n")
    sys.exit(1)


def parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--":
            return options, argv[i:]
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if not eq and name in _WITH_VALUE and name not in _OPTIONAL:
                if i >= len(argv):
                    fail(f"option --{name} requires an argument")
                value = argv[i]
                i += 1
            options[name] = value
        elif word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):
                letter = word[j]
                if letter in _FLAGS:
                    options[_FLAGS[letter]] = ""
                    j += 1
                    continue
                if letter not in _SHORT:
                    fail(f"invalid option -- '{letter}'")
                value = word[j + 1 :]
                if not value:
                    if i >= len(argv):
                        fail(f"option requires an argument -- '{letter}'")
                    value = argv[i]
                    i += 1
                options[_SHORT[letter]] = value
                break
        else:
            return options, argv[i - 1 :]
    return options, []


def number(options: dict[str, str], name: str, default: int) -> int:
    text = options.get(name, "")
    if not text:
        return default
    first = text.split("-")[0].split(":")[-1]  # -N 1-1, --gpus a100:1
    if not first.isdigit():
        fail(f"invalid --{name} {text!r}")
    return int(first)


def main(argv: list[str]) -> int:
    options, command = parse(argv)
    if "help" in options or not command:
        sys.stderr.write("usage: srun [options] COMMAND [ARGS...]  (gflow's srun, inside a job)\n")
        return 0 if "help" in options else 1
    env = os.environ
    if "GFLOW_JOB_ID" not in env:
        fail("gflow's srun runs only inside a gflow job (submit with gbatch)")
    if number(options, "nodes", 1) > 1:
        fail("only one node here: --nodes must be 1")
    held_cpus = int(env.get("SLURM_CPUS_ON_NODE") or os.cpu_count() or 1)
    default_tasks = int(env.get("SLURM_NTASKS") or 1) if "ntasks" not in options else 1
    tasks = number(options, "ntasks", default_tasks)
    per_task = number(options, "cpus-per-task", int(env.get("SLURM_CPUS_PER_TASK") or 1))
    if tasks * per_task > held_cpus:
        fail(
            f"More processors requested than permitted: {tasks} task(s) x {per_task} CPU(s)"
            f" but the job holds {held_cpus}"
        )
    held_gpus = int(env.get("SLURM_GPUS_ON_NODE") or 0)
    gpus = number(options, "gpus", 0) or number(options, "gpus-per-task", 0) * tasks
    if gpus > held_gpus:
        fail(f"the job holds {held_gpus} GPU(s); srun asked for {gpus}")
    if "chdir" in options:
        os.chdir(options["chdir"])
    base = dict(env, SLURM_NTASKS=str(tasks), SLURM_NPROCS=str(tasks), SLURM_STEP_ID="0")
    if "job-name" in options:
        base["SLURM_JOB_NAME"] = options["job-name"]
    if tasks == 1 and "label" not in options:
        base.update(SLURM_PROCID="0", SLURM_LOCALID="0")
        try:
            os.execvpe(command[0], command, base)
        except OSError as exc:
            fail(f"{command[0]}: {exc.strerror}")
    return run_tasks(command, base, tasks, "label" in options)


def run_tasks(command: list[str], base: dict[str, str], tasks: int, label: bool) -> int:
    children = []
    for rank in range(tasks):
        env = dict(base, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank))
        read_end = -1
        if label:
            read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            if label:
                os.dup2(write_end, 1)
                os.dup2(write_end, 2)
                os.close(read_end)
            try:
                os.execvpe(command[0], command, env)
            except OSError as exc:
                sys.stderr.write(f"srun: error: {command[0]}: {exc.strerror}\n")
            os._exit(127)
        if label:
            os.close(write_end)
        children.append((pid, rank, read_end))
    if label:  # one task's lines after another's: simple, and no line is cut in two
        for _, rank, fd in children:
            with os.fdopen(fd, "rb") as out:
                for line in out:
                    sys.stdout.buffer.write(f"{rank}: ".encode() + line)
        sys.stdout.flush()
    worst = 0
    for pid, _, _ in children:
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        worst = max(worst, code if code >= 0 else 128 - code)
    return worst


def scontrol(argv: list[str]) -> int:
    if argv[:2] == ["show", "hostnames"]:
        names = argv[2] if len(argv) > 2 else os.environ.get("SLURM_JOB_NODELIST", "")
        for name in filter(None, names.split(",")):
            print(name)
        return 0
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder, "scontrol")
        if os.path.abspath(folder) != here and os.access(candidate, os.X_OK):
            os.execv(candidate, [candidate, *argv])
    sys.stderr.write("scontrol: inside a gflow job only `scontrol show hostnames` is known\n")
    return 1


if __name__ == "__main__":
    if os.path.basename(sys.argv[0]) == "scontrol":
        sys.exit(scontrol(sys.argv[1:]))
    sys.exit(main(sys.argv[1:]))
