"""gbatch: submit a job (a command, a script file, or a script on stdin)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gflow.cli.common import EXIT_OK, Parser, print_json, run, usage_value
from gflow.client import Client
from gflow.core.errors import InvalidInput
from gflow.core.limits import MAX_GPUS, MAX_PRIORITY
from gflow.core.parse import format_duration, parse_dependency_ref, parse_int, parse_time_limit
from gflow.paths import Paths

MAX_SCRIPT_BYTES = 1_000_000


def build_parser() -> Parser:
    p = Parser(
        "gbatch",
        "Submit a job. Options come first; everything after the command is the command's.",
        usage="gbatch [options] (COMMAND [ARG ...] | SCRIPT | - | --command 'SHELL STRING')",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments, or a script")
    p.add_argument("--command", dest="shell_string", metavar="'CMD'",
                   help="one shell string to run (instead of COMMAND ARGS)")  # fmt: skip
    p.add_argument("-J", "-n", "--name", "--job-name", dest="name", default="", help="job name")
    p.add_argument("-t", "--time", "--time-limit", dest="time_limit",
                   type=usage_value(parse_time_limit),
                   help="time limit: N minutes, MM:SS, HH:MM:SS, D-HH:MM:SS, 2h…")  # fmt: skip
    p.add_argument("-p", "--priority", "--nice", type=usage_value(_priority), default=10,
                   help="0-255, higher runs first (default 10)")  # fmt: skip
    p.add_argument("-g", "--gpus", type=usage_value(_gpu_count), default=0,
                   help="number of GPUs (exclusive)")  # fmt: skip
    p.add_argument("--gres", type=usage_value(_gres), dest="gres", help="Slurm form: gpu:N")
    p.add_argument("-d", "--depends-on", "--dependency", dest="depends_on", action="append",
                   default=[], type=usage_value(_dependency),
                   help="start after this job finished successfully: ID, @ or @~N, "
                        "or afterok:ID[:ID…]")  # fmt: skip
    p.add_argument("--hold", action="store_true", help="submit held (gjob release starts it)")
    p.add_argument("--keep-session", action="store_true",
                   help="keep the job's tmux session open after it ends")  # fmt: skip
    p.add_argument("--auto-close", action="store_true", help=argparse.SUPPRESS)  # the default
    p.add_argument("--parsable", action="store_true", help="print only the job id")
    p.add_argument("--dry-run", action="store_true", help="show what would be submitted")
    p.add_argument("--json", action="store_true", help="print the submitted job as JSON")
    return p


def _priority(text: str) -> int:
    return parse_int(text, "priority", 0, MAX_PRIORITY)


def _gpu_count(text: str) -> int:
    return parse_int(text, "GPU count", 0, MAX_GPUS)


def _gres(text: str) -> int:
    m = re.fullmatch(r"gpu(?::[\w.-]+)?:([0-9]+)", text.strip())
    if not m:
        raise InvalidInput(f"invalid --gres {text!r}", hint="use gpu:N, e.g. gpu:2")
    return _gpu_count(m.group(1))


def _dependency(text: str) -> list[int | str]:
    """ID, @, @~N, or Slurm's afterok:ID[:ID…] (the scheduler issue adds the other kinds)."""
    raw = text.strip()
    if raw.startswith("afterok:"):
        return [parse_dependency_ref(part) for part in raw[len("afterok:") :].split(":")]
    return [parse_dependency_ref(part) for part in raw.split(",")]


def shell_word(arg: str) -> str:
    """Quote one argument for bash, keeping $VARS live: '$GFLOW_ARRAY_TASK_ID' expands in the
    job, while an argument with spaces stays one argument."""
    if arg and re.fullmatch(r"[\w@%+=:,./$-]+", arg) and "$(" not in arg:
        return arg
    return '"' + re.sub(r'(["\\`])', r"\\\1", arg) + '"'


def build_spec(args: argparse.Namespace, stdin_is_tty: bool) -> dict[str, Any]:
    words: list[str] = args.command[1:] if args.command[:1] == ["--"] else args.command
    spec: dict[str, Any] = {
        "workdir": _working_directory(),
        "env": dict(os.environ),
        "name": args.name,
        "priority": args.priority,
        "gpus": args.gres if args.gres is not None else args.gpus,
        "time_limit": args.time_limit,
        "depends_on": [dep for group in args.depends_on for dep in group],
        "hold": args.hold,
        "keep_session": args.keep_session,
    }
    if args.shell_string is not None:
        if words:
            raise InvalidInput("give either --command 'CMD' or COMMAND ARGS, not both")
        if not args.shell_string.strip():
            raise InvalidInput("--command is empty")
        spec["command"] = args.shell_string
    elif words == ["-"] or (not words and not stdin_is_tty):
        spec["script"] = "/dev/stdin"
        spec["script_body"] = _read_script(sys.stdin.buffer.read(MAX_SCRIPT_BYTES + 1), "stdin")
    elif not words:
        raise InvalidInput("nothing to run", hint="give a command, a script, or --command 'CMD'")
    elif len(words) == 1 and Path(words[0]).is_file():
        path = Path(words[0]).absolute()
        try:
            data = path.read_bytes()[: MAX_SCRIPT_BYTES + 1]
        except OSError as exc:
            raise InvalidInput(f"cannot read script {words[0]}: {exc.strerror}") from None
        spec["script"] = str(path)
        spec["script_body"] = _read_script(data, str(path))
    elif len(words) == 1 and any(c.isspace() for c in words[0]):
        spec["command"] = words[0]  # `gbatch "python a.py && python b.py"`: a shell string
    else:
        spec["command"] = " ".join(shell_word(w) for w in words)
    return spec


def _read_script(data: bytes, where: str) -> str:
    if len(data) > MAX_SCRIPT_BYTES:
        raise InvalidInput(f"script {where} is larger than 1 MB")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise InvalidInput(f"script {where} is not UTF-8 text") from None
    if not text.strip():
        raise InvalidInput(f"script {where} is empty")
    return text


def _working_directory() -> str:
    """The directory as the user sees it ($PWD keeps symlinked paths), if it is the same one."""
    cwd = os.getcwd()
    pwd = os.environ.get("PWD", "")
    try:
        if pwd.startswith("/") and os.path.samefile(pwd, cwd):
            return pwd
    except OSError:
        pass
    return cwd


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    spec = build_spec(args, sys.stdin.isatty())
    if args.dry_run:
        shown = {k: v for k, v in spec.items() if k not in ("env", "script_body")}
        if args.json:
            print_json(shown)
        else:
            what = spec.get("command") or spec.get("script")
            limit = format_duration(spec["time_limit"]) if spec["time_limit"] else "none"
            print(f"Would submit 1 batch job: {what}")
            print(f"  GPUs: {spec['gpus']}  priority: {spec['priority']}  time limit: {limit}"
                  f"  workdir: {spec['workdir']}")  # fmt: skip
        return EXIT_OK
    job = Client(Paths.from_env()).submit([spec])[0]
    if args.json:
        print_json(job)
    elif args.parsable:
        print(job["id"])
    else:
        print(f"Submitted batch job {job['id']}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run("gbatch", _main, argv)
