"""gbatch: submit a job (a command, a script file, or a script on stdin)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from gflow.cli.common import EXIT_OK, Parser, print_json, run, usage_value
from gflow.cli.directives import DirectiveParser, given_only, new_script, read_directives
from gflow.cli.export_slurm import bare_flag_to_stdout, export_target
from gflow.cli.job_options import add_job_options, job_options
from gflow.cli.script_mode import script_path
from gflow.client import Client
from gflow.core.errors import InvalidInput, NotFound
from gflow.core.sweep import parse_param, parse_param_csv, substitute, substitute_in_shell, sweep
from gflow.paths import Paths

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any

MAX_SCRIPT_BYTES = 1_000_000


def build_parser(kind: type[Parser] = Parser) -> Parser:
    p = kind(
        "gbatch",
        "Submit a job. Options come first; everything after the command is the command's.",
        usage="gbatch [options] (COMMAND [ARG ...] | SCRIPT | - | --command 'SHELL STRING')",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments, or a script")
    p.add_argument(
        "--command",
        dest="shell_string",
        metavar="'CMD'",
        help="one shell string to run (instead of COMMAND ARGS)",
    )
    add_job_options(p)
    sweeps = p.add_argument_group("parameter sweeps")
    sweeps.add_argument(
        "--param",
        action="append",
        default=[],
        type=usage_value(parse_param),
        metavar="NAME=VALUES",
        help="one job per value, {NAME} replaced in the command: lr=0.1,0.01 or bs=32:128:32; "
        "repeat for a grid",
    )
    sweeps.add_argument(
        "--param-file", metavar="CSV", help="one job per row of a CSV file with a header row"
    )
    sweeps.add_argument(
        "--name-template", metavar="TEMPLATE", help="job names from parameters: 'run_{lr}'"
    )
    p.add_argument("--parsable", action="store_true", help="print only the job id")
    p.add_argument("--dry-run", action="store_true", help="show what would be submitted")
    p.add_argument(
        "--export-slurm",
        nargs="?",
        const="-",
        metavar="FILE",
        type=usage_value(export_target),
        help="write the equivalent sbatch script (to stdout, or FILE) and submit nothing",
    )
    p.add_argument("--json", action="store_true", help="print the submitted job as JSON")
    return p


SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh"})


def shell_command(words: list[str]) -> str:
    """The typed words as one shell string for the job.

    `$NAME` in an argument stays live, so `--task '$GFLOW_ARRAY_TASK_ID'` expands in the
    job (gflow's documented use). A script for an inner shell (`bash -c '…'`) is passed
    exactly as typed: its own `$n` and `$(…)` belong to that shell.
    """
    if len(words) >= 3 and words[0].rsplit("/", 1)[-1] in SHELLS and words[1] == "-c":
        return shlex.join(words)
    return " ".join(shell_word(w) for w in words)


def shell_word(arg: str) -> str:
    """Quote one argument for bash, keeping $NAME and ${NAME} live and nothing else: no
    command substitution, globbing or word splitting."""
    if arg and re.fullmatch(r"[\w@%+=:,./-]+", arg):
        return arg
    return '"' + re.sub(r'(["\\`]|\$(?![A-Za-z_{]))', r"\\\1", arg) + '"'


def _words(args: argparse.Namespace) -> list[str]:
    words: list[str] = args.command[1:] if args.command[:1] == ["--"] else args.command
    return words


def load_script(args: argparse.Namespace, stdin_is_tty: bool) -> tuple[str, str] | None:
    """(path, text) when the job is a script: one existing file, or `-` / piped stdin."""
    words = _words(args)
    if args.shell_string is not None:
        return None
    if words == ["-"] or (not words and not stdin_is_tty):
        return "/dev/stdin", _read_script(sys.stdin.buffer.read(MAX_SCRIPT_BYTES + 1), "stdin")
    found = script_path(words[0]) if words and not (len(words) == 1 and " " in words[0]) else None
    if found is not None:
        path = found.absolute()
        try:
            data = path.read_bytes()[: MAX_SCRIPT_BYTES + 1]
        except OSError as exc:
            raise InvalidInput(f"cannot read script {words[0]}: {exc.strerror}") from None
        return str(path), _read_script(data, str(path))
    return None


def _current_umask() -> int:
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def build_spec(args: argparse.Namespace, script: tuple[str, str] | None) -> dict[str, Any]:
    words = _words(args)
    submit_dir = _working_directory()
    chdir = args.chdir
    workdir = os.path.normpath(os.path.join(submit_dir, chdir)) if chdir else submit_dir
    if chdir is not None and not (chdir and os.path.isdir(workdir)):
        raise InvalidInput(f"--chdir {chdir!r}: no such directory")
    spec: dict[str, Any] = {
        "workdir": workdir,
        # The umask goes along (as Slurm's SLURM_UMASK): a system daemon's job gets it back.
        "env": {**os.environ, "GFLOW_UMASK": f"{_current_umask():04o}"},
        **job_options(args),
    }
    spec["batch"]["submit_dir"] = submit_dir
    for key in ("output", "error"):
        _check_output_dir(spec["batch"][key], workdir, key)
    if args.shell_string is not None:
        if words:
            raise InvalidInput("give either --command 'CMD' or COMMAND ARGS, not both")
        if not args.shell_string.strip():
            raise InvalidInput("--command is empty")
        spec["command"] = args.shell_string
    elif script is not None:
        spec["script"], spec["script_body"] = script
        spec["batch"]["args"] = words[1:]
    elif not words:
        raise InvalidInput("nothing to run", hint="give a command, a script, or --command 'CMD'")
    elif len(words) == 1 and any(c.isspace() for c in words[0]):
        spec["command"] = words[0]  # `gbatch "python a.py && python b.py"`: a shell string
    else:
        spec["command"] = shell_command(words)
    if "command" in spec and not spec["conda_env"]:
        # gflow's rule: a command runs in the conda env it was submitted from.
        spec["conda_env"] = os.environ.get("CONDA_DEFAULT_ENV", "")
    return spec


def _check_output_dir(pattern: str, workdir: str, flag: str) -> None:
    """Slurm fails such a job silently; here it is refused at submission."""
    folder = os.path.dirname(pattern)
    if folder and "%" not in folder and not os.path.isdir(os.path.join(workdir, folder)):
        raise InvalidInput(f"--{flag} {pattern}: directory {folder} does not exist")


def _read_script(data: bytes, where: str) -> str:
    if len(data) > MAX_SCRIPT_BYTES:
        raise InvalidInput(f"script {where} is larger than 1 MB")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise InvalidInput(f"script {where} is not UTF-8 text") from None
    if not text.strip():
        raise InvalidInput(f"script {where} is empty")
    if "\r\n" in text:  # sbatch refuses these too: the shebang would name 'bash\r'
        raise InvalidInput(
            f"script {where} has DOS line breaks (\\r\\n)", hint="convert it: dos2unix FILE"
        )
    return text


def _working_directory() -> str:
    """The directory as the user sees it ($PWD keeps symlinked paths), if it is the same one."""
    try:
        cwd = os.getcwd()
    except OSError:  # FileNotFoundError: the shell sits in a directory that was deleted
        raise NotFound(
            "the current directory no longer exists (was it deleted?)",
            hint="cd to a directory that exists: a job runs where it was submitted",
        ) from None
    pwd = os.environ.get("PWD", "")
    try:
        if pwd.startswith("/") and os.path.samefile(pwd, cwd):
            return pwd
    except OSError:
        pass
    return cwd


def expand(spec: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """One spec per array task or sweep point (the whole lot goes in one request)."""
    sweeping = bool(args.param) or args.param_file is not None  # '' is a file name too
    if args.array is not None and sweeping:
        raise InvalidInput("--array and --param/--param-file cannot be combined")
    if args.array is not None:
        tasks, throttle = args.array
        limit = throttle if throttle is not None else spec["max_concurrent"]
        from gflow.core.sbatch import array_info

        info = array_info(tasks)
        batch = {**spec["batch"], "array": [info.min, info.max, info.tasks, info.step]}
        return [
            {**spec, "array_task_id": task, "max_concurrent": limit, "batch": batch}
            for task in tasks
        ]
    if not sweeping:
        if args.name_template:
            raise InvalidInput("--name-template needs --param or --param-file")
        return [spec]
    if not spec.get("command"):
        raise InvalidInput("--param fills {NAME} in a command; it cannot template a script")
    rows = _read_param_file(args.param_file) if args.param_file is not None else None
    specs = []
    for values in sweep(args.param, rows):
        name = spec["name"]
        if args.name_template:
            name = substitute(args.name_template, values, "name template")
        command = substitute_in_shell(spec["command"], values)
        specs.append({**spec, "command": command, "name": name})
    return specs


def _read_param_file(path: str) -> list[dict[str, str]]:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read --param-file {path}: {exc}") from None
    return parse_param_csv(text, path)


def command(argv: Sequence[str]) -> int:
    if argv[:1] == ["new"] and len(argv) == 2:
        return new_script(argv[1])
    parser = build_parser()
    argv = bare_flag_to_stdout(list(argv))
    args = parser.parse_args(argv)
    script = load_script(args, sys.stdin.isatty())
    notes: list[str] = []
    if script is not None:
        args, notes = with_directives(parser, args, argv, script)
    specs = expand(build_spec(args, script), args)
    for note in notes:  # once the request is whole: a refusal stays one line
        print(f"gbatch: note: {note}", file=sys.stderr)
    if args.export_slurm is not None:  # no daemon, no Slurm: the same pure translation
        from gflow.cli.export_slurm import export_slurm

        return export_slurm(specs, args.export_slurm)
    client = Client(Paths.for_client())
    if args.dry_run:
        from gflow.cli.dry_run import dry_run  # only here: every gbatch starts up

        return dry_run(client, specs, args.json)
    answer = client.request("POST", "/jobs", {"jobs": specs})
    for note in answer.get("notes", []):
        print(f"gbatch: note: {note}", file=sys.stderr)
    jobs: list[dict[str, Any]] = answer["jobs"]
    ids = f"{jobs[0]['id']}-{jobs[-1]['id']}" if len(jobs) > 1 else str(jobs[0]["id"])
    if args.json:
        print_json(jobs if len(jobs) > 1 or args.array else jobs[0])
    elif args.parsable:
        print(ids)
    elif len(jobs) > 1:
        kind = "array" if args.array else "sweep"
        print(f"Submitted batch {kind} of {len(jobs)} jobs: {ids}")
    else:
        print(f"Submitted batch job {ids}")
    return EXIT_OK


def with_directives(
    parser: Parser, args: argparse.Namespace, argv: Sequence[str], script: tuple[str, str]
) -> tuple[argparse.Namespace, list[str]]:
    """The script's directives under the command line: each option the command line gives
    (in any spelling of it) replaces the script's, the rest come from the script. Also the
    notes on the #SBATCH options gflow does not honour."""
    found = read_directives(given_only(build_parser(DirectiveParser)), script)
    typed = vars(given_only(build_parser()).parse_args(argv))
    typed.pop("command", None)
    merged = {**vars(parser.parse_args([])), **found.given, **typed, "command": args.command}
    if found.sbatch and not merged["output"]:  # sbatch's default: slurm-<id>.out
        from gflow.core.sbatch import default_output

        merged["output"] = default_output(merged["array"] is not None)
    return argparse.Namespace(**merged), found.notes


def main(argv: Sequence[str] | None = None) -> int:
    return run("gbatch", command, argv)
