"""sbatch's options as sbatch reads them, and what each one becomes in gflow.

Pure and stdlib-light (gbatch's start path imports it). Three parts:

- `split_directive`: one `#SBATCH` line into words, as sbatch's `get_argument` does (quotes
  removed, `\\ ` keeps a space, an unescaped `#` starts a comment);
- `getopt_long`: the words as getopt_long(3) reads them against sbatch's own option table
  (short options attached or separate, `--opt=value` and `--opt value`, unique prefixes);
- `to_gbatch`: the options as gbatch's long options, plus one note for each flag gflow does
  not honour, saying what happens instead.

The option table is sbatch's (src/common/slurm_opt.c, the options sbatch accepts).
"""

from __future__ import annotations

import itertools
import re
from typing import NamedTuple

from gflow.core.errors import InvalidInput

NONE, REQUIRED, OPTIONAL = 0, 1, 2

# long name -> does it take a value (getopt's has_arg), from Slurm's slurm_opt.c
SBATCH_OPTIONS: dict[str, int] = {
    "account": 1, "acctg-freq": 1, "array": 1, "batch": 1, "bbf": 1, "begin": 1, "bb": 1,
    "consolidate-segments": 0, "cluster-constraint": 1, "chdir": 1, "clusters": 1,
    "cluster": 1, "comment": 1, "constraint": 1, "container": 1, "container-id": 1,
    "context": 1, "contiguous": 0, "core-spec": 1, "cores-per-socket": 1, "cpu-freq": 1,
    "cpus-per-gpu": 1, "cpus-per-task": 1, "deadline": 1, "delay-boot": 1, "dependency": 1,
    "distribution": 1, "error": 1, "exclude": 1, "exclusive": 2, "export": 1,
    "export-file": 1, "extra": 1, "extra-node-info": 1, "get-user-env": 2, "gid": 1,
    "gpu-bind": 1, "tres-bind": 1, "gpu-freq": 1, "gpus": 1, "gpus-per-node": 1,
    "gpus-per-socket": 1, "gpus-per-task": 1, "tres-per-task": 1, "gres": 1, "gres-flags": 1,
    "help": 0, "hint": 1, "hold": 0, "ignore-pbs": 0, "input": 1, "job-name": 1,
    "kill-on-invalid-dep": 1, "licenses": 1, "mail-type": 1, "mail-user": 1, "mcs-label": 1,
    "mem": 1, "mem-bind": 1, "mem-per-cpu": 1, "mem-per-gpu": 1, "mincpus": 1, "network": 1,
    "nice": 2, "no-kill": 2, "no-requeue": 0, "nodefile": 1, "nodelist": 1, "nodes": 1,
    "ntasks": 1, "ntasks-per-core": 1, "ntasks-per-node": 1, "ntasks-per-socket": 1,
    "ntasks-per-gpu": 1, "open-mode": 1, "output": 1, "overcommit": 0, "oversubscribe": 0,
    "parsable": 0, "partition": 1, "power": 1, "prefer": 1, "priority": 1, "profile": 1,
    "propagate": 2, "qos": 1, "quiet": 0, "reboot": 0, "requeue": 0, "reservation": 1,
    "signal": 1, "sockets-per-node": 1, "spread-job": 0, "switches": 1, "tasks-per-node": 1,
    "test-only": 0, "thread-spec": 1, "threads-per-core": 1, "time": 1, "time-min": 1,
    "tmp": 1, "uid": 1, "use-min-nodes": 0, "usage": 0, "verbose": 0, "version": 0,
    "wait": 0, "wait-all-nodes": 1, "wckey": 1, "wrap": 1,
}  # fmt: skip

SBATCH_SHORT: dict[str, str] = {
    "A": "account", "a": "array", "b": "begin", "B": "extra-node-info", "C": "constraint",
    "c": "cpus-per-task", "D": "chdir", "d": "dependency", "e": "error", "F": "nodefile",
    "G": "gpus", "H": "hold", "h": "help", "i": "input", "J": "job-name", "k": "no-kill",
    "L": "licenses", "M": "clusters", "m": "distribution", "N": "nodes", "n": "ntasks",
    "O": "overcommit", "o": "output", "p": "partition", "q": "qos", "Q": "quiet",
    "s": "oversubscribe", "S": "core-spec", "t": "time", "V": "version", "v": "verbose",
    "W": "wait", "w": "nodelist", "x": "exclude",
}  # fmt: skip


class Option(NamedTuple):
    """One option as sbatch read it: its long name and its value (None if it took none)."""

    name: str
    value: str | None


def split_directive(text: str) -> list[str]:
    """The words of one directive line after its magic word, as sbatch's get_argument reads
    them: whitespace separates, quotes group (and are removed), a backslash takes the next
    character as it is, an unescaped '#' outside quotes ends the line."""
    words: list[str] = []
    word: list[str] | None = None
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):  # first, as in sbatch: inside quotes too
            i += 1
            word = word if word is not None else []
            word.append(text[i])
        elif quote:
            if c == quote:
                quote = ""
            else:
                word.append(c)  # type: ignore[union-attr]  # started with the quote
        elif c in "'\"":
            quote = c
            word = word if word is not None else []
        elif c == "#":
            break
        elif c.isspace():
            if word is not None:
                words.append("".join(word))
            word = None
        else:
            word = word if word is not None else []
            word.append(c)
        i += 1
    if quote:
        raise InvalidInput(f"unmatched {quote} in {text.strip()!r}")
    if word is not None:
        words.append("".join(word))
    return words


def long_name(typed: str, table: dict[str, int]) -> str:
    """The option a `--name` means: itself, or the one option it is a prefix of (getopt)."""
    if typed in table:
        return typed
    matches = [name for name in table if name.startswith(typed)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InvalidInput(
            f"option --{typed} is ambiguous", hint=f"could be --{', --'.join(sorted(matches))}"
        )
    raise InvalidInput(f"unrecognized option --{typed}", hint="see man sbatch")


def getopt_long(
    words: list[str],
    table: dict[str, int] = SBATCH_OPTIONS,
    short: dict[str, str] = SBATCH_SHORT,
) -> tuple[list[Option], list[str]]:
    """(options, the words left over once options end) as getopt_long reads them."""
    found: list[Option] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--":
            return found, words[i:]
        if word.startswith("--"):
            typed, eq, value = word[2:].partition("=")
            name = long_name(typed, table)
            has_arg = table[name]
            if eq and has_arg == NONE:
                raise InvalidInput(f"option --{name} takes no value ({word!r})")
            if not eq and has_arg == REQUIRED:
                if i >= len(words):
                    raise InvalidInput(f"option --{name} needs a value")
                value = words[i]
                i += 1
            found.append(Option(name, value if eq or has_arg == REQUIRED else None))
        elif word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):
                letter = word[j]
                if letter not in short:
                    raise InvalidInput(
                        f"invalid option -{letter} in {word!r}", hint="see man sbatch"
                    )
                name = short[letter]
                if table[name] == NONE:
                    found.append(Option(name, None))
                    j += 1
                    continue
                rest = word[j + 1 :]
                if rest:
                    value = rest
                elif table[name] == OPTIONAL:
                    value = None  # getopt: an optional value must be attached
                elif i < len(words):
                    value = words[i]
                    i += 1
                else:
                    raise InvalidInput(f"option -{letter} needs a value")
                found.append(Option(name, value))
                break
        else:
            return found, words[i - 1 :]
    return found, []


# sbatch option -> gbatch's long option of the same meaning
_SAME_MEANING = {
    "job-name": "--job-name", "time": "--time", "gres": "--gres", "gpus": "--gpus",
    "gpus-per-node": "--gpus-per-node", "gpus-per-task": "--gpus-per-task",
    "mem": "--mem", "mem-per-cpu": "--mem-per-cpu", "mem-per-gpu": "--mem-per-gpu",
    "cpus-per-task": "--cpus-per-task", "ntasks": "--ntasks",
    "ntasks-per-node": "--ntasks-per-node", "tasks-per-node": "--ntasks-per-node",
    "ntasks-per-gpu": "--ntasks-per-gpu", "mincpus": "--mincpus", "signal": "--signal",
    "cpus-per-gpu": "--cpus-per-gpu",
    "dependency": "--dependency", "array": "--array", "output": "--output",
    "error": "--error", "open-mode": "--open-mode", "nodes": "--nodes", "chdir": "--chdir",
    "exclusive": "--exclusive", "hold": "--hold",
    "mail-type": "--mail-type", "mail-user": "--mail-user",
}  # fmt: skip

# What happens instead, for options that ask for something a single machine has no use for.
_INSTEAD = {
    "partition": "one machine, no partitions; ignored",
    "account": "no accounts here; ignored (--project tags a job)",
    "qos": "no QOS here; ignored (--priority orders jobs)",
    "reservation": "ignored (gctl reserve holds GPUs here)",
    "constraint": "one machine; ignored",
    "nodelist": "one machine; ignored",
    "exclude": "one machine; ignored",
    "export": "the job gets your whole environment, as --export=ALL",
    "get-user-env": "the job gets your whole environment; ignored",
    "requeue": "not requeued on a node failure; --max-retries requeues failures",
    "no-requeue": "jobs are never requeued unless --max-retries asks; ignored",
    "nice": "no nice adjustment here; --priority N orders jobs (higher first)",
    "priority": "ignored; --priority on gbatch's command line sets gflow's 0-255 priority",
    "input": "the job's stdin is its terminal; ignored",
    "wait": "sbatch -W applies to the command line only (grun waits for a job); ignored",
    "parsable": "applies to the command line only; ignored in a script",
    "test-only": "applies to the command line only (gbatch --dry-run); ignored in a script",
}
_IGNORED = "no effect on one machine; ignored"


class Translation(NamedTuple):
    args: list[str]  # gbatch long options
    notes: list[str]  # one per flag gflow does not honour: what happens instead


def to_gbatch(options: list[Option]) -> Translation:
    """sbatch options as gbatch arguments; the rest named once each with what happens."""
    args: list[str] = []
    notes: dict[str, str] = {}
    for name, value in options:
        ours = _SAME_MEANING.get(name)
        if name == "begin" and value is not None:
            args.append(f"--begin={slurm_begin(value)}")
        elif name == "kill-on-invalid-dep":
            if (value or "").lower() in ("no", "0"):  # yes: gflow's default already
                args.append("--no-auto-cancel")
        elif name == "exclusive":
            args.append("--exclusive")  # =user|mcs|topo: still the whole machine here
            if value:
                notes.setdefault(name, f"--exclusive={value}: the whole machine, as --exclusive")
        elif ours is not None:
            args.append(ours if value is None else f"{ours}={value}")
        elif name in ("help", "usage", "version", "quiet", "verbose"):
            continue  # about sbatch's own output
        elif name == "wrap":
            raise InvalidInput("--wrap has no meaning inside a script")
        else:
            notes.setdefault(name, f"--{name}: {_INSTEAD.get(name, _IGNORED)}")
    return Translation(args, list(notes.values()))


_BEGIN_UNITS = {
    "": "s", "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "h": "h", "hour": "h", "hours": "h", "d": "d", "day": "d", "days": "d",
}  # fmt: skip
_BEGIN_NAMED = {"midnight": "00:00", "noon": "12:00", "elevenses": "11:00",
                "fika": "15:00", "teatime": "16:00"}  # fmt: skip


def slurm_begin(text: str) -> str:
    """Slurm's --begin in gflow's --begin syntax: `now+60` is 60 *seconds* in Slurm (a bare
    number is minutes in gflow), `now+1hour`, `now+2weeks`, midnight/noon/teatime …"""
    raw = text.strip().lower()
    if m := re.fullmatch(r"now\+([0-9]{1,9})([a-z]*)", raw):
        count, unit = int(m.group(1)), m.group(2)
        if unit in ("w", "week", "weeks"):
            return f"now+{count * 7}d"
        if unit not in _BEGIN_UNITS:
            raise InvalidInput(
                f"invalid --begin {text!r}",
                hint="use now+N[seconds|minutes|hours|days|weeks], HH:MM[:SS] or a date",
            )
        return f"now+{count}{_BEGIN_UNITS[unit]}"
    return _BEGIN_NAMED.get(raw, text)


SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ABRT": 6, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12,
    "PIPE": 13, "ALRM": 14, "TERM": 15, "CONT": 18, "STOP": 19, "TSTP": 20, "URG": 23,
    "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "PWR": 30,
}  # fmt: skip
SIGNAL_FORMS = "[B:]SIG[@SECONDS], e.g. USR1@90, B:TERM@300 or 10 (default 60 s)"


class Warning_(NamedTuple):
    """`--signal`: send this signal this long before the time limit."""

    signum: int
    seconds: int
    batch_only: bool  # B: only the batch shell, not every process of the job


def parse_signal(text: str) -> Warning_:
    """Slurm's --signal=[{R|B}:]<sig_num>[@sig_time] (R, requeue, means nothing here).
    Without B: it goes to the job's steps (what srun started), not the batch shell."""
    m = re.fullmatch(r"(?:([RB]{1,2}):)?([A-Za-z0-9]+)(?:@([0-9]{1,7}))?", text.strip())
    if not m:
        raise InvalidInput(f"invalid --signal {text!r}", hint=f"use {SIGNAL_FORMS}")
    name = m.group(2).upper().removeprefix("SIG")
    signum = int(name) if name.isdigit() else SIGNALS.get(name, 0)
    if not 0 < signum < 65:
        raise InvalidInput(f"invalid signal {m.group(2)!r} in --signal", hint=f"use {SIGNAL_FORMS}")
    seconds = int(m.group(3)) if m.group(3) else 60
    return Warning_(signum, seconds, "B" in (m.group(1) or ""))


class ArrayInfo(NamedTuple):
    """An array's task ids, for SLURM_ARRAY_TASK_MIN/MAX/COUNT/STEP."""

    min: int
    max: int
    tasks: int  # how many
    step: int


def array_info(tasks: list[int]) -> ArrayInfo:
    steps = {b - a for a, b in itertools.pairwise(tasks)}
    step = steps.pop() if len(steps) == 1 else 1
    return ArrayInfo(min(tasks), max(tasks), len(tasks), step)


def default_output(array: bool) -> str:
    """sbatch's default output file: slurm-%j.out, slurm-%A_%a.out for an array."""
    return "slurm-%A_%a.out" if array else "slurm-%j.out"
