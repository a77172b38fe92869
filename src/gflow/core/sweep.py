"""Parameter sweeps: --param grids, CSV rows, and {name} placeholders in commands and names.

Pure: the CLI reads the CSV file and hands its text here.
"""

from __future__ import annotations

import itertools
import re
import shlex

from gflow.core.errors import InvalidInput

PARAM_FORMS = "NAME=V1,V2,… or NAME=START:STOP[:STEP] (numbers, inclusive)"
MAX_SWEEP_JOBS = 100_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# {name}, but not ${name} (a shell variable the job should expand itself).
_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def parse_param(text: str) -> tuple[str, list[str]]:
    """'lr=0.1,0.01' -> ('lr', ['0.1', '0.01']); 'bs=32:128:32' -> ('bs', ['32', …, '128'])."""
    name, eq, values = text.partition("=")
    name = name.strip()
    if not eq or not _NAME.fullmatch(name) or not values.strip():
        raise InvalidInput(f"invalid --param {text!r}", hint=f"use {PARAM_FORMS}")
    if "," not in values and 1 <= values.count(":") <= 2:
        return name, _numeric_range(text, values)
    found = [v.strip() for v in values.split(",") if v.strip()]
    if not found:
        raise InvalidInput(f"invalid --param {text!r}: no values", hint=f"use {PARAM_FORMS}")
    return name, found


def _numeric_range(text: str, values: str) -> list[str]:
    parts = values.split(":")
    try:
        start, stop = float(parts[0]), float(parts[1])
        step = float(parts[2]) if len(parts) == 3 else (1.0 if stop >= start else -1.0)
    except ValueError:
        raise InvalidInput(f"invalid --param range {text!r}", hint=f"use {PARAM_FORMS}") from None
    if step == 0 or (stop - start) / step < 0 or (stop - start) / step >= MAX_SWEEP_JOBS:
        raise InvalidInput(f"invalid --param range {text!r}", hint=f"use {PARAM_FORMS}")
    decimals = max(_decimals(p) for p in parts)
    count = int(round((stop - start) / step, 9)) + 1
    return [_number(start + i * step, decimals) for i in range(count)]


def _decimals(text: str) -> int:
    return len(text.strip().split(".", 1)[1]) if "." in text else 0


def _number(value: float, decimals: int) -> str:
    """0.5 as '0.5', 1.0 as '1': the way a user writes a value in a command line."""
    if not decimals:
        return str(round(value))
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def parse_param_csv(text: str, where: str) -> list[dict[str, str]]:
    """Rows of a CSV file with a header: one job per row."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not rows[0]:
        raise InvalidInput(f"{where}: empty; the first row names the parameters")
    header = [h.strip() for h in rows[0]]
    bad = [h for h in header if not _NAME.fullmatch(h)]
    if bad or len(set(header)) != len(header):
        raise InvalidInput(f"{where}: invalid header {rows[0]!r}", hint="names like lr, batch_size")
    table = []
    for number, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InvalidInput(f"{where}:{number}: {len(row)} values for {len(header)} columns")
        table.append(dict(zip(header, (cell.strip() for cell in row), strict=True)))
    if not table:
        raise InvalidInput(f"{where}: no rows after the header")
    return table


def sweep(
    params: list[tuple[str, list[str]]], rows: list[dict[str, str]] | None = None
) -> list[dict[str, str]]:
    """The cartesian product of the --param lists (first outermost), times the CSV rows."""
    names = [name for name, _ in params]
    if len(set(names)) != len(names) or (rows and set(names) & set(rows[0])):
        raise InvalidInput("a parameter is given twice")
    grid = [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(v for _, v in params))
    ]
    combined = [{**row, **point} for row in (rows or [{}]) for point in grid]
    if len(combined) > MAX_SWEEP_JOBS:
        raise InvalidInput(f"the sweep makes {len(combined)} jobs; at most {MAX_SWEEP_JOBS}")
    return combined


def placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER.findall(template))


def substitute(template: str, values: dict[str, str], what: str) -> str:
    """Fill {name} placeholders (in a job name); an unknown one is an error now, not when
    the job runs."""
    _refuse_unknown(template, values, what)
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def substitute_in_shell(command: str, values: dict[str, str]) -> str:
    """Fill {name} placeholders in a shell command so that each value lands as literal
    text, whatever it holds (`$(…)`, quotes, spaces): quoted for the place it stands in,
    outside quotes, inside "…" or inside '…'."""
    _refuse_unknown(command, values, "command")
    out: list[str] = []
    quote = ""  # the quote we are inside: '', '"' or "'"
    i = 0
    while i < len(command):
        found = _PLACEHOLDER.match(command, i) if command[i] == "{" else None
        if found and (i == 0 or command[i - 1] != "$"):
            out.append(_quoted_for(values[found.group(1)], quote))
            i = found.end()
            continue
        char = command[i]
        if char == "\\" and quote != "'":  # an escaped character is never a quote
            out.append(command[i : i + 2])
            i += 2
            continue
        if char in "'\"" and quote in ("", char):
            quote = "" if quote == char else char
        out.append(char)
        i += 1
    return "".join(out)


def _quoted_for(value: str, quote: str) -> str:
    if quote == "'":  # end the quote, add the value as its own quoted word, reopen
        return value.replace("'", "'\\''")
    if quote == '"':
        return re.sub(r'(["\\$`])', r"\\\1", value)
    return shlex.quote(value)


def _refuse_unknown(template: str, values: dict[str, str], what: str) -> None:
    unknown = sorted(placeholders(template) - values.keys())
    if unknown:
        raise InvalidInput(
            f"unknown placeholder {{{unknown[0]}}} in the {what}",
            hint=f"parameters: {', '.join(sorted(values)) or 'none'}; "
            "write ${NAME} for a shell variable",
        )
