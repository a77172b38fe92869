"""Script directives: `# GFLOW --flag[=value]` and Slurm's `#SBATCH --flag` lines at the top
of a script, read with gbatch's own parser; and `gbatch new NAME`, a commented template."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import NoReturn

from gflow.cli.common import EXIT_OK, Parser
from gflow.core.errors import InvalidInput

# The Slurm flags gflow shares; any other #SBATCH line (partition, nodes…) is ignored.
SBATCH_FLAGS = {
    "-J": "--job-name", "--job-name": "--job-name", "-t": "--time", "--time": "--time",
    "--gres": "--gres", "--mem": "--mem", "-d": "--dependency", "--dependency": "--dependency",
    "-a": "--array", "--array": "--array", "--begin": "--begin",
}  # fmt: skip


class DirectiveParser(Parser):
    """gbatch's parser, but an error raises instead of exiting: it names the script line."""

    def error(self, message: str) -> NoReturn:
        raise InvalidInput(message)


def header_directives(text: str) -> list[tuple[int, list[str]]]:
    """(line, gbatch arguments) of each directive in the header, which ends at the first
    line that is neither blank nor a comment."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or (number == 1 and stripped.startswith("#!")):
            continue
        if not stripped.startswith("#"):
            break
        try:
            if stripped.startswith("# GFLOW") or stripped.startswith("#GFLOW"):
                found.append((number, shlex.split(stripped.split("GFLOW", 1)[1])))
            elif stripped.startswith("#SBATCH"):
                found.append((number, _shared_sbatch_flags(shlex.split(stripped[7:]), number)))
        except ValueError as exc:  # unbalanced quotes
            raise InvalidInput(f"line {number}: {exc}") from None
    return found


def _shared_sbatch_flags(tokens: list[str], number: int) -> list[str]:
    kept: list[str] = []
    skip_value = False
    for token in tokens:
        if not token.startswith("-"):
            if not skip_value:
                kept.append(token)
            skip_value = False
            continue
        name, eq, value = token.partition("=")
        ours = SBATCH_FLAGS.get(name)
        if ours is None:
            print(f"gbatch: line {number}: #SBATCH {name} is not used by gflow; ignored",
                  file=sys.stderr)  # fmt: skip
            skip_value = not eq
            continue
        kept.append(f"{ours}={value}" if eq else ours)
        skip_value = False
    return kept


def directives_namespace(parser: Parser, script: tuple[str, str]) -> argparse.Namespace | None:
    """The options the script's directives set (None if it has none)."""
    path, text = script
    namespace: argparse.Namespace | None = None
    try:
        lines = header_directives(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc.message}") from None
    for number, tokens in lines:
        try:
            namespace = parser.parse_args(tokens, namespace=namespace)
        except InvalidInput as exc:
            raise InvalidInput(f"{path}:{number}: {exc.message}", hint=exc.hint) from None
        if namespace.command or namespace.shell_string:
            raise InvalidInput(f"{path}:{number}: a directive holds options only, not a command")
    return namespace


TEMPLATE = """\
#!/bin/bash
# A gflow job script. Submit it with:  gbatch {name}
# Lines starting with '# GFLOW' at the top set gbatch options (the command line wins);
# Slurm's '#SBATCH' lines work too for --job-name, --time, --gres, --mem, --dependency,
# --array. Remove the extra '#' to use one.
# GFLOW --job-name={stem}
# GFLOW --time=1:00:00
## GFLOW --gpus=1
## GFLOW --gpu-memory=10G --shared
## GFLOW --mem=8G
## GFLOW --priority=20
## GFLOW --dependency=afterok:123
## GFLOW --array=1-10%2

set -euo pipefail
echo "job $GFLOW_JOB_ID (array task $GFLOW_ARRAY_TASK_ID) on GPUs '$CUDA_VISIBLE_DEVICES'"
# python train.py
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
