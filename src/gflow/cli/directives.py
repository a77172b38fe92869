"""Script directives: `#SBATCH` and `# GFLOW` lines at the top of a script, read as sbatch
reads its own (core/sbatch.py); and `gbatch new NAME`, a commented template.

The header ends at the first line that is neither blank nor a comment. A directive starts
in column 1 (an indented `#SBATCH` is a comment, as in sbatch); an unescaped `#` starts a
comment. `#SBATCH` lines use sbatch's option table and short letters (`-c` CPUs, `-n` tasks,
`-p` partition); `# GFLOW` lines take gbatch's job options.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gflow.cli.common import EXIT_OK, Parser
from gflow.core.errors import InvalidInput

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any, NoReturn, TypeVar

    P = TypeVar("P", bound=argparse.ArgumentParser)

# Flags about gbatch's own output, not about the job: they belong on the command line.
NOT_IN_A_SCRIPT = frozenset({"dry_run", "json", "parsable", "shell_string"})


class DirectiveParser(Parser):
    """gbatch's parser, but an error raises instead of exiting: it names the script line."""

    def error(self, message: str) -> NoReturn:
        raise InvalidInput(message)


class Directive:
    """One directive line: its gbatch arguments, and notes on sbatch flags not honoured.
    (Plain classes here, not NamedTuples: cheaper on gbatch's start-up path.)"""

    __slots__ = ("args", "line", "notes", "sbatch")

    def __init__(self, line: int, args: list[str], notes: list[str], sbatch: bool) -> None:
        self.line, self.args, self.notes, self.sbatch = line, args, notes, sbatch


def header_directives(text: str) -> list[Directive]:
    """Each directive of the header, its options as gbatch arguments."""
    from gflow.core.sbatch import getopt_long, split_directive, to_gbatch  # scripts only

    found = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        try:
            if line.startswith(("#SBATCH", "#SLURM")):
                rest = line[7:] if line.startswith("#SBATCH") else line[6:]
                options, leftover = getopt_long(split_directive(rest))
                if leftover:
                    raise InvalidInput(f"invalid directive {leftover[0]!r}: not an option")
                translated = to_gbatch(options)
                found.append(Directive(number, translated.args, translated.notes, True))
            elif line.startswith(("# GFLOW", "#GFLOW")):
                words = split_directive(line.split("GFLOW", 1)[1])
                found.append(Directive(number, words, [], False))
        except InvalidInput as exc:
            raise InvalidInput(f"line {number}: {exc.message}", hint=exc.hint) from None
    return found


def given_only(parser: P) -> P:
    """The parser, changed so a parse returns only the options actually given: the command
    line then wins over the directives flag by flag, whatever the spelling."""
    for action in parser._actions:  # argparse has no public way to suppress set defaults
        action.default = argparse.SUPPRESS
    return parser


class Directives:
    """What a script's header asks for."""

    __slots__ = ("given", "notes", "sbatch")

    def __init__(self, given: dict[str, Any], notes: list[str], sbatch: bool) -> None:
        self.given = given  # gbatch option dests the script's directives set
        self.notes = notes
        self.sbatch = sbatch  # the script has #SBATCH lines (a Slurm script)


def read_directives(parser: Parser, script: tuple[str, str]) -> Directives:
    """What the script's directives ask for. `parser` is gbatch's, from given_only()."""
    path, text = script
    try:
        lines = header_directives(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc.message}", hint=exc.hint) from None
    given: dict[str, Any] = {}
    notes: list[str] = []
    for line in lines:
        try:
            found = vars(parser.parse_args(line.args))
        except InvalidInput as exc:
            raise InvalidInput(f"{path}:{line.line}: {exc.message}", hint=exc.hint) from None
        if found.get("command"):
            raise InvalidInput(f"{path}:{line.line}: a directive holds options only, not a command")
        refused = sorted(NOT_IN_A_SCRIPT & found.keys())
        if refused and not line.sbatch:
            flag = "--" + refused[0].replace("_", "-")
            raise InvalidInput(
                f"{path}:{line.line}: {flag} is not a job option; give it on the command line"
            )
        found.pop("command", None)
        for dest, value in found.items():
            if isinstance(value, list) and isinstance(given.get(dest), list):
                value = given[dest] + value  # repeated --dependency lines add up
            given[dest] = value
        notes += [f"{path}:{line.line}: #SBATCH {note}" for note in line.notes]
    return Directives(given, notes, any(line.sbatch for line in lines))


TEMPLATE = """\
#!/bin/bash
# A gflow job script. Submit it with:  gbatch {name} [ARGS...]
# Lines starting with '# GFLOW' at the top set gbatch options (the command line wins);
# Slurm's '#SBATCH' lines work too, as sbatch reads them. Remove the extra '#' to use one.
# GFLOW --job-name={stem}
# GFLOW --time=1:00:00
## GFLOW --gpus=1
## GFLOW --gpu-memory=10G --shared
## GFLOW --mem=8G
## GFLOW --cpus-per-task=4
## GFLOW --priority=20
## GFLOW --dependency=afterok:123
## GFLOW --array=1-10%2
## GFLOW --output=%x-%j.out

set -euo pipefail
echo "job $GFLOW_JOB_ID (array task $GFLOW_ARRAY_TASK_ID) on GPUs '$CUDA_VISIBLE_DEVICES'"
# python train.py "$@"
"""


def new_script(name: str) -> int:
    """`gbatch new NAME`: write NAME.sh, never over an existing file."""
    path = Path(name if name.endswith(".sh") else f"{name}.sh")
    if path.exists():
        raise InvalidInput(f"{path} already exists; not overwritten")
    try:
        path.write_text(TEMPLATE.format(name=path, stem=path.stem))
        path.chmod(0o755)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror}") from None
    print(f"Wrote {path}; edit it, then: gbatch {path}")
    return EXIT_OK
