"""Slurm-named front doors (sbatch, squeue, scancel, sacct, scontrol) for fingers that type
them, installed only when asked (`gflowd slurm-aliases install [DIR]`) and never where a
real Slurm command of that name is on PATH.

Each maps its Slurm options onto ours: sbatch reads its command line with sbatch's own
table (core/sbatch.py: `-c` is CPUs here, as in sbatch), then calls gbatch.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gflow.cli.common import EXIT_OK, run
from gflow.core.errors import InvalidInput
from gflow.core.sbatch import getopt_long, to_gbatch

FRONT_DOORS = ("sbatch", "squeue", "scancel", "sacct", "scontrol")
MARK = "# gflow slurm front door"


def sbatch(argv: Sequence[str]) -> int:
    options, rest = getopt_long(list(argv))
    translated = to_gbatch([o for o in options if o.name not in ("parsable", "test-only",
                                                                 "wrap")])  # fmt: skip
    for note in translated.notes:
        print(f"sbatch: note: {note}", file=sys.stderr)
    ours = list(translated.args)
    names = {o.name for o in options}
    if "parsable" in names:
        ours.append("--parsable")
    if "test-only" in names:
        ours.append("--dry-run")
    wrap = [o.value for o in options if o.name == "wrap" and o.value]
    if wrap:
        ours += ["--command", wrap[-1]]
    from gflow.cli import gbatch

    return gbatch.command([*ours, *rest])


def squeue(argv: Sequence[str]) -> int:
    options, _ = getopt_long(list(argv), _SQUEUE, _SQUEUE_SHORT)
    ours: list[str] = []
    for name, value in options:
        if name == "user" and value:
            ours += ["-u", value]
        elif name == "jobs" and value:
            ours += ["-j", value]
        elif name == "states" and value:
            ours += ["-s", value]
        elif name == "me":
            pass  # ours shows the caller's jobs by default
    from gflow.cli import gqueue

    return gqueue.command(ours)


_SQUEUE = {"user": 1, "jobs": 1, "states": 1, "me": 0, "noheader": 0, "long": 0,
           "format": 1, "partition": 1, "all": 0}  # fmt: skip
_SQUEUE_SHORT = {"u": "user", "j": "jobs", "t": "states", "h": "noheader", "l": "long",
                 "o": "format", "p": "partition", "a": "all"}  # fmt: skip


def scancel(argv: Sequence[str]) -> int:
    options, ids = getopt_long(list(argv), {"user": 1, "name": 1}, {"u": "user", "n": "name"})
    ours = [id_.split("_")[0] for id_ in ids]
    for name, value in options:
        ours += [f"--{name}", value or ""]
    from gflow.cli import gcancel

    return gcancel.command(ours)


def sacct(argv: Sequence[str]) -> int:
    table = {"jobs": 1, "user": 1, "allusers": 0, "starttime": 1, "format": 1, "parsable2": 0,
             "noheader": 0, "state": 1}  # fmt: skip
    short = {"j": "jobs", "u": "user", "a": "allusers", "S": "starttime", "o": "format",
             "P": "parsable2", "n": "noheader", "s": "state"}  # fmt: skip
    options, _ = getopt_long(list(argv), table, short)
    ours = ["-a"]
    for name, value in options:
        if name == "jobs" and value:
            ours += ["-j", value]
        elif name == "user" and value:
            ours += ["-u", value]
        elif name == "allusers":
            ours += ["-u", "all"]
        elif name == "state" and value:
            ours += ["-s", value]
    from gflow.cli import gqueue

    return gqueue.command(ours)


def scontrol(argv: Sequence[str]) -> int:
    words = list(argv)
    if words[:1] in (["hold"], ["release"]) and len(words) == 2:
        action = words[0]
    elif words[:2] == ["show", "job"] and len(words) == 3:
        action, words = "show", ["show", words[2]]
    else:
        raise InvalidInput("scontrol here knows: hold ID, release ID, show job ID")
    from gflow.cli import gjob

    return gjob.command([action, words[1].split("_")[0]])


def real_slurm(name: str, ours: Path) -> str | None:
    """A command of this name on PATH that is not one of our front doors."""
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = Path(folder or ".") / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            try:
                if MARK in candidate.read_text(errors="replace")[:400]:
                    continue
            except OSError:
                pass
            return str(candidate)
    return None


def install(folder: Path) -> list[str]:
    """Write the front doors into `folder`; skip (and say) any name a real Slurm has."""
    folder.mkdir(parents=True, exist_ok=True)
    said = []
    for name in FRONT_DOORS:
        real = real_slurm(name, folder / name)
        if real is not None:
            said.append(f"{name}: skipped, a real one is on PATH ({real})")
            continue
        (folder / name).write_text(
            f"#!{sys.executable}\n{MARK}: gflowd slurm-aliases uninstall removes it\n"
            f"import sys\nfrom gflow.cli.slurm_front import main\nsys.exit(main({name!r}))\n"
        )
        (folder / name).chmod(0o755)
        said.append(f"{name}: {folder / name}")
    return said


def uninstall(folder: Path) -> list[str]:
    said = []
    for name in FRONT_DOORS:
        path = folder / name
        if path.is_file() and MARK in path.read_text(errors="replace")[:400]:
            path.unlink()
            said.append(f"{name}: removed")
    return said


def main(name: str, argv: Sequence[str] | None = None) -> int:
    body = {"sbatch": sbatch, "squeue": squeue, "scancel": scancel, "sacct": sacct,
            "scontrol": scontrol}[name]  # fmt: skip
    return run(name, body, argv)


def aliases_command(action: str, folder: str) -> int:
    """`gflowd slurm-aliases install|uninstall [DIR]` (default ~/.local/bin)."""
    where = Path(folder).expanduser() if folder else Path.home() / ".local" / "bin"
    for line in (install if action == "install" else uninstall)(where):
        print(line)
    return EXIT_OK
