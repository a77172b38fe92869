"""What every command shares: one-line usage errors, error-to-exit-code mapping, printing."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Callable, Sequence

from gflow import __version__
from gflow.core.errors import GflowError

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any, NoReturn

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def terminal_columns() -> int:
    """shutil.get_terminal_size()'s columns: $COLUMNS, else the terminal's, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size().columns  # stdout's
        except (ValueError, OSError):
            columns = 0
    return columns or 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's, with the width from terminal_columns(): argparse builds a formatter on
    every add_argument, and its own default width imports shutil (with bz2 and lzma, ~2 ms
    of every command's start) just to read it."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = terminal_columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (SPEC §10) and exits 2."""

    def __init__(self, prog: str, description: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(prog=prog, description=description, **kwargs)
        self.add_argument("-V", "--version", action="version", version=f"{prog} {__version__}")

    def error(self, message: str) -> NoReturn:
        text = one_line(message)
        print(f"{self.prog}: {text} (see {self.prog.split()[0]} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # Python 3.11's argparse drops the '--' of `--limit=--` (or a second `--`) and gives
        # the argument [] instead of a value.
        if arg_strings == ["--"] and action.nargs is None:
            name = "/".join(action.option_strings) or action.metavar or action.dest
            self.error(f"argument {name}: expected one argument")
        return super()._get_values(action, arg_strings)


def one_line(text: str) -> str:
    """A message that quotes what the user typed stays one line (SPEC §10)."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def tune_garbage_collector() -> None:
    """A listing of 10,000 jobs allocates ~100,000 objects, none of them in a cycle: at the
    default threshold (700) the cycle collector would scan them ~150 times, ~7 % of
    `gqueue -a`'s time. What the imports made is never garbage: keep it out of the scans."""
    gc.freeze()
    gc.set_threshold(100_000)


def run(prog: str, body: Callable[[Sequence[str]], int], argv: Sequence[str] | None) -> int:
    """Run a command's body; turn every error we know into one line and an exit code."""
    if argv is None:  # the command is this whole process (not a call from Python code)
        tune_garbage_collector()
    args = sys.argv[1:] if argv is None else argv
    try:
        if list(args[:1]) == ["completion"] and len(args) == 2:
            from gflow.cli.completion import completion_script

            print(completion_script(args[1], prog.split()[0]), end="")
            return EXIT_OK
        return body(args)
    except GflowError as exc:
        fail(prog, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `gqueue | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def fail(prog: str, exc: GflowError) -> None:
    hint = f"; {exc.hint}" if exc.hint else ""
    print(one_line(f"{prog}: {exc.message}{hint}"), file=sys.stderr)


def usage_value(call: Callable[[str], Any]) -> Callable[[str], Any]:
    """Wrap a core parser for argparse, so its message (with the accepted forms) is kept."""

    def parse(text: str) -> Any:
        try:
            return call(text)
        except GflowError as exc:
            hint = f"; {exc.hint}" if exc.hint else ""
            raise argparse.ArgumentTypeError(f"{exc.message}{hint}") from None

    parse.__name__ = call.__name__
    return parse


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def display_width(text: str) -> int:
    """Columns a terminal gives the text: East Asian wide and full-width characters take
    two, combining marks none (an emoji-heavy name may still be off by one: no table of
    the terminal's own is at hand)."""
    if text.isascii():
        return len(text)
    import unicodedata  # a C module; only for names that are not ASCII

    return sum(
        0
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf")
        else 2
        if unicodedata.east_asian_width(c) in ("W", "F")
        else 1
        for c in text
    )


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, by display width. Widths by column and one
    format string per line, so 10,000 rows take ~10 ms rather than ~40 (`gqueue` on a big
    queue); a table with text that is not ASCII pads those cells by their display width."""
    table = [headers, *rows]
    if "".join(map("".join, table)).isascii():  # one C-level pass over every cell
        widths = [max(map(len, column)) for column in zip(*table, strict=True)]
        line = "  ".join(f"{{:<{width}}}" for width in widths)
        return "".join(line.format(*row).rstrip() + "\n" for row in table)
    widths = [max(map(display_width, column)) for column in zip(*table, strict=True)]
    return "".join(
        "  ".join(cell + " " * (width - display_width(cell)) for cell, width in
                  zip(row, widths, strict=True)).rstrip() + "\n"
        for row in table
    )  # fmt: skip


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    sys.stdout.write(format_table(headers, rows))
