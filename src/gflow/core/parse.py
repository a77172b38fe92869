"""Parsers for what users type: time limits, sizes, job id lists, dependency shorthands."""

from __future__ import annotations

import re

from gflow.core.errors import InvalidInput
from gflow.core.limits import MAX_JOB_ID, MAX_SIZE_MB, MAX_TIME_LIMIT

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:  # datetime is imported lazily: the CLIs' start path avoids it
    from datetime import datetime

TIME_FORMS = "N (minutes), MM:SS, HH:MM:SS, D-HH[:MM[:SS]], or 30s / 10m / 2h / 1d"

_SUFFIX_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time_limit(text: str) -> int:
    """Return seconds for gflow's and Slurm's time formats ('90' is 90 minutes, as in both)."""
    raw = text.strip().lower()
    try:
        seconds = _parse_time(raw)
    except (ValueError, OverflowError):
        raise InvalidInput(f"invalid time {text!r}", hint=f"use {TIME_FORMS}") from None
    if not 0 < seconds <= MAX_TIME_LIMIT:
        raise InvalidInput(
            f"invalid time {text!r}: must be more than 0 and at most 10 years",
            hint=f"use {TIME_FORMS}",
        )
    return seconds


def _parse_time(raw: str) -> int:
    if m := re.fullmatch(r"([0-9]{1,18}(?:\.[0-9]{1,9})?)([smhd])", raw):
        return round(float(m.group(1)) * _SUFFIX_SECONDS[m.group(2)])
    days = 0
    slurm_days = "-" in raw
    if slurm_days:
        day_part, _, raw = raw.partition("-")
        days = _int(day_part)
    fields = [_int(f) for f in raw.split(":")]
    if not 1 <= len(fields) <= 3 or any(f >= 60 for f in fields[1:]):
        raise ValueError(raw)  # '1:90:00' is a typo, not 2:30:00
    if slurm_days:  # Slurm: D-HH, D-HH:MM, D-HH:MM:SS
        fields += [0] * (3 - len(fields))
    elif len(fields) == 1:  # a bare number is minutes, in gflow and in Slurm
        fields = [0, fields[0], 0]
    elif len(fields) == 2:  # MM:SS
        fields = [0, *fields]
    hours, minutes, seconds = fields
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _int(text: str) -> int:
    if not is_number(text):
        raise ValueError(text)
    return int(text)


def parse_int(text: str, what: str, lo: int, hi: int) -> int:
    """A whole number in [lo, hi], or one line saying what is wrong."""
    raw = text.strip()
    if not is_number(raw) or not lo <= int(raw) <= hi:
        raise InvalidInput(f"invalid {what} {text!r}", hint=f"use a whole number from {lo} to {hi}")
    return int(raw)


def is_number(text: str) -> bool:
    """ASCII digits, short enough for int() and SQLite ('²'.isdigit() is True; not for us)."""
    return re.fullmatch(r"[0-9]{1,18}", text) is not None


def format_duration(seconds: float | None) -> str:
    """'1-02:03:04' / '02:03:04' like Slurm; '-' for unknown."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


SIZE_FORMS = "a number of MB (512) or a size with a unit: 512M, 10G, 1.5G, 1T"

_SIZE_UNITS_MB = {"": 1, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def parse_size_mb(text: str) -> int:
    """Return mebibytes for '512', '512M', '10G', '1.5g', '10GiB'."""
    m = re.fullmatch(r"\s*([0-9]{1,18}(?:\.[0-9]{1,9})?)\s*(?:([kmgt])(?:i?b)?)?\s*", text.lower())
    if not m:
        raise InvalidInput(f"invalid size {text!r}", hint=f"use {SIZE_FORMS}")
    mb = float(m.group(1)) * _SIZE_UNITS_MB[m.group(2) or ""]
    if not 1 <= mb <= MAX_SIZE_MB:
        raise InvalidInput(
            f"invalid size {text!r}: must be between 1M and 1024T", hint=f"use {SIZE_FORMS}"
        )
    return round(mb)


def format_size_mb(mb: int | None) -> str:
    if mb is None:
        return "-"
    if mb >= 1024 and mb % 1024 == 0:
        return f"{mb // 1024}G"
    if mb >= 1024:
        return f"{mb / 1024:.1f}G"
    return f"{mb}M"


ID_LIST_FORMS = "ids like 5, 1,2,3, 4-9 or 1,3,5-7"
MAX_ID_RANGE = 100_000
# Ids one list may name in all: each range is bounded, but an 8 KB request line holds
# ~460 of them (46 million ids, ~4 GB and ~15 s of the daemon's loop to expand).
MAX_IDS = 1_000_000


def parse_id_list(text: str) -> list[int]:
    """'1,3,5-7' -> [1, 3, 5, 6, 7] (sorted, deduplicated)."""
    spans: list[tuple[int, int]] = []
    named = 0
    for part in text.split(","):
        part = part.strip()
        if m := re.fullmatch(r"([0-9]{1,18})-([0-9]{1,18})", part):
            lo, hi = int(m.group(1)), int(m.group(2))
            if not 0 < lo <= hi <= MAX_JOB_ID or hi - lo > MAX_ID_RANGE:
                raise InvalidInput(f"invalid id range {part!r}", hint=f"use {ID_LIST_FORMS}")
        elif is_number(part) and 0 < int(part) <= MAX_JOB_ID:
            lo = hi = int(part)
        else:
            raise InvalidInput(f"invalid job id {part!r}", hint=f"use {ID_LIST_FORMS}")
        named += hi - lo + 1
        if named > MAX_IDS:  # counted before any is expanded: refused at once
            raise InvalidInput(f"more than {MAX_IDS:,} job ids", hint=f"use {ID_LIST_FORMS}")
        spans.append((lo, hi))
    ids: set[int] = set()
    for lo, hi in spans:
        ids.update(range(lo, hi + 1))
    return sorted(ids)


def format_id_list(ids: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3,7': what `parse_id_list` reads back, as short as ranges make
    it (a 2,000-task array's ids are one range, not 10 KB in a URL)."""
    parts: list[str] = []
    ordered = sorted(set(ids))
    start = 0
    for n in range(1, len(ordered) + 1):
        if n == len(ordered) or ordered[n] != ordered[n - 1] + 1:
            lo, hi = ordered[start], ordered[n - 1]
            # A range spans at most MAX_ID_RANGE ids: split longer runs.
            while hi - lo > MAX_ID_RANGE:
                parts.append(f"{lo}-{lo + MAX_ID_RANGE}")
                lo += MAX_ID_RANGE + 1
            parts.append(str(lo) if lo == hi else f"{lo}-{hi}")
            start = n
    return ",".join(parts)


ARRAY_FORMS = "1-10, 1-10:2 (step), 1,3,7, optionally with %N (at most N running): 1-100%4"
MAX_ARRAY_TASKS = 100_000


def parse_array(text: str) -> tuple[list[int], int | None]:
    """Slurm's --array: task ids and the optional %N throttle."""
    spec, percent, throttle_text = text.strip().partition("%")
    throttle = None
    if percent:
        throttle = parse_int(throttle_text, "array throttle", 1, MAX_ARRAY_TASKS)
    tasks: set[int] = set()
    for part in spec.split(","):
        m = re.fullmatch(r"([0-9]{1,9})(?:-([0-9]{1,9})(?::([0-9]{1,9}))?)?", part.strip())
        if not m:
            raise InvalidInput(f"invalid array {text!r}", hint=f"use {ARRAY_FORMS}")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        step = int(m.group(3)) if m.group(3) else 1
        if last < first or step == 0 or (last - first) // step >= MAX_ARRAY_TASKS:
            raise InvalidInput(f"invalid array range {part.strip()!r}", hint=f"use {ARRAY_FORMS}")
        tasks.update(range(first, last + 1, step))
        if len(tasks) > MAX_ARRAY_TASKS:
            raise InvalidInput(f"array {text!r} has more than {MAX_ARRAY_TASKS} tasks")
    return sorted(tasks), throttle


DEPENDENCY_FORMS = (
    "a job id (12), an id range (12-15), @ (your last submission: every job of it) "
    "or @~N (the submission N before your last; @~0 is @)"
)
MAX_DEPENDENCIES = 100_000  # ids one dependency list may name (an array of that size)


def parse_dependency_ref(text: str) -> int | str:
    """A job id, or the shorthand '@' / '@~N' which the daemon resolves per user ('@~0' is
    '@', as git's HEAD~0 is HEAD)."""
    raw = text.strip()
    if is_number(raw) and 0 < int(raw) <= MAX_JOB_ID:
        return int(raw)
    if raw in ("@", "@~0") or re.fullmatch(r"@~[1-9][0-9]{0,8}", raw):
        return "@" if raw == "@~0" else raw
    raise InvalidInput(f"invalid dependency {text!r}", hint=f"use {DEPENDENCY_FORMS}")


def parse_dependency_refs(text: str) -> list[int | str]:
    """One reference, or an id range ('133-135' -> [133, 134, 135])."""
    if m := re.fullmatch(r"\s*([0-9]{1,18})-([0-9]{1,18})\s*", text):
        lo, hi = int(m.group(1)), int(m.group(2))
        if not 0 < lo <= hi <= MAX_JOB_ID or hi - lo >= MAX_DEPENDENCIES:
            raise InvalidInput(f"invalid dependency range {text.strip()!r}",
                               hint=f"use {DEPENDENCY_FORMS}")  # fmt: skip
        return list(range(lo, hi + 1))
    return [parse_dependency_ref(text)]


def parse_dependency_list(text: str) -> list[int | str]:
    """'1,3,5-7,@' -> [1, 3, 5, 6, 7, '@'], each reference once, in the order given."""
    refs: dict[int | str, None] = {}
    for part in text.split(","):
        refs.update(dict.fromkeys(parse_dependency_refs(part)))
        if len(refs) > MAX_DEPENDENCIES:
            raise InvalidInput(f"more than {MAX_DEPENDENCIES} dependencies in {text[:40]!r}…")
    return list(refs)


BEGIN_FORMS = (
    "now, now+N[s|m|h|d], +N (minutes), HH:MM[:SS] (next time it comes), today, tomorrow, "
    "YYYY-MM-DD or YYYY-MM-DD[T ]HH:MM[:SS]"
)


def parse_begin(text: str, now: datetime) -> float:
    """A --begin / --at time as Unix time; `now` is timezone-aware local time."""
    when = _parse_begin(text, now)
    if when - now.timestamp() > MAX_TIME_LIMIT:
        raise InvalidInput(f"begin time {text!r} is more than 10 years away")
    return when


def _parse_begin(text: str, now: datetime) -> float:
    from datetime import timedelta

    raw = text.strip().lower()
    if raw == "now":
        return now.timestamp()
    if m := re.fullmatch(r"(?:now)?\+([0-9]{1,9})([smhd]?)", raw):
        seconds = int(m.group(1)) * _SUFFIX_SECONDS[m.group(2) or "m"]
        return now.timestamp() + seconds
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if raw in ("today", "tomorrow"):
        return (midnight + timedelta(days=raw == "tomorrow")).timestamp()
    if m := re.fullmatch(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?", raw):
        try:
            at = now.replace(
                hour=int(m.group(1)),
                minute=int(m.group(2)),
                second=int(m.group(3) or 0),
                microsecond=0,
            )
        except ValueError:
            raise InvalidInput(f"invalid time of day {text!r}", hint=f"use {BEGIN_FORMS}") from None
        return (at if at > now else at + timedelta(days=1)).timestamp()
    if (when := _calendar_time(raw, now)) is not None:
        return when
    raise InvalidInput(f"invalid begin time {text!r}", hint=f"use {BEGIN_FORMS}")


SINCE_FORMS = "Nm, Nh, Nd, Nw (ago), today, yesterday, YYYY-MM-DD[THH:MM[:SS]], or a Unix time"
_AGO_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime) -> float:
    """A --since time as Unix time: '2h' is two hours before `now` (timezone-aware)."""
    from datetime import timedelta

    raw = text.strip().lower()
    if m := re.fullmatch(r"([0-9]{1,6})([mhdw])", raw):
        return now.timestamp() - int(m.group(1)) * _AGO_SECONDS[m.group(2)]
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if raw in ("today", "yesterday"):
        return (midnight - timedelta(days=raw == "yesterday")).timestamp()
    if re.fullmatch(r"[0-9]{9,11}", raw):
        return float(raw)
    if (when := _calendar_time(raw, now)) is not None:
        return when
    raise InvalidInput(f"invalid time {text!r}", hint=f"use {SINCE_FORMS}")


_CALENDAR_FORMS = (
    "%Y-%m-%d",
    "%Y-%m-%dt%H:%M",
    "%Y-%m-%dt%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S",
)


def _calendar_time(raw: str, now: datetime) -> float | None:
    """'2026-12-01', '2026-12-01t08:30[:15]' or with a space, in the time zone of `now`."""
    from datetime import datetime as dt

    for form in _CALENDAR_FORMS:
        try:
            return dt.strptime(raw, form).replace(tzinfo=now.tzinfo).timestamp()
        except ValueError:
            continue
    return None


def parse_gpu_indices(text: str, forms: str = "e.g. 0,2 or 0-3") -> list[int]:
    """'0,2' / '0-3' -> sorted GPU indices."""
    indices: set[int] = set()
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        first = parse_int(lo, "GPU index", 0, 1023)
        last = parse_int(hi, "GPU index", 0, 1023) if dash else first
        if last < first:
            raise InvalidInput(f"invalid GPU range {part!r}", hint=f"use {forms}")
        indices.update(range(first, last + 1))
    return sorted(indices)
