"""gflow.core.parse: what users type for times, sizes, id lists and dependencies (SPEC §10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gflow.core.dependencies import parse_slurm_dependency
from gflow.core.errors import InvalidInput
from gflow.core.parse import (
    MAX_TIME_LIMIT,
    format_duration,
    format_size_mb,
    parse_array,
    parse_begin,
    parse_dependency_list,
    parse_dependency_ref,
    parse_id_list,
    parse_since,
    parse_size_mb,
    parse_time_limit,
)
from gflow.core.sweep import parse_param, substitute, sweep

# ---- parse_time_limit ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1", 60),
        ("90", 90 * 60),
        ("05:30", 5 * 60 + 30),
        ("1:30", 90),
        ("02:03:04", 2 * 3600 + 3 * 60 + 4),
        ("100:00:00", 100 * 3600),
        (" 10 ", 600),
    ],
)
def test_parse_time_limit_gflow_forms(text: str, seconds: int) -> None:
    """'N' is minutes, 'MM:SS' and 'HH:MM:SS' are clock forms."""
    assert parse_time_limit(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1-02", 86400 + 2 * 3600),
        ("1-02:30", 86400 + 2 * 3600 + 30 * 60),
        ("1-02:30:15", 86400 + 2 * 3600 + 30 * 60 + 15),
        ("2-00", 2 * 86400),
        ("0-00:00:30", 30),
    ],
)
def test_parse_time_limit_slurm_day_forms(text: str, seconds: int) -> None:
    """Slurm's 'D-HH', 'D-HH:MM' and 'D-HH:MM:SS'."""
    assert parse_time_limit(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0-02", 2 * 3600),
        ("0-01:30", 3600 + 30 * 60),
    ],
)
def test_parse_time_limit_slurm_day_forms_with_zero_days(text: str, seconds: int) -> None:
    """'0-HH' and '0-HH:MM' are hours (and minutes) as in Slurm, not minutes or MM:SS."""
    assert parse_time_limit(text) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("1.5h", 5400),
        ("2H", 7200),
        (" 45s ", 45),
    ],
)
def test_parse_time_limit_suffix_forms(text: str, seconds: int) -> None:
    """'30s', '10m', '2h', '1d' and fractional '1.5h' (case-insensitive)."""
    assert parse_time_limit(text) == seconds


def test_parse_time_limit_accepts_exactly_the_maximum() -> None:
    """The 10-year ceiling itself is accepted."""
    assert parse_time_limit(f"{MAX_TIME_LIMIT}s") == MAX_TIME_LIMIT


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "0",
        "00:00",
        "0s",
        "abc",
        "-1",
        "1:90:00",
        "1:2:3:4",
        "1.5",
        "1-",
        "1-2-3",
        "10x",
        f"{MAX_TIME_LIMIT + 1}s",
        "3661d",
        "100000h",
        "9" * 30,
        "9" * 400 + "h",
        "9" * 5000,
    ],
)
def test_parse_time_limit_rejects_malformed_or_out_of_range(text: str) -> None:
    """Bad or out-of-range times raise InvalidInput naming the value and the accepted forms."""
    with pytest.raises(InvalidInput) as caught:
        parse_time_limit(text)
    assert repr(text) in caught.value.message
    for form in ("MM:SS", "HH:MM:SS", "D-HH", "30s", "2h"):
        assert form in caught.value.hint


# ---- parse_size_mb -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("512", 512),
        ("1024M", 1024),
        ("512m", 512),
        ("2G", 2048),
        ("1.5g", 1536),
        ("10GiB", 10240),
        ("10GB", 10240),
        ("1T", 1024 * 1024),
        ("1024K", 1),
        (" 2 G ", 2048),
    ],
)
def test_parse_size_mb_accepts_numbers_and_units(text: str, mb: int) -> None:
    """Bare numbers are MB; K/M/G/T units (with optional B / iB) scale by 1024."""
    assert parse_size_mb(text) == mb


@pytest.mark.parametrize("text", ["", "0", "0G", "-5G", "10X", "G", "1k", "1025T", "1.2.3G"])
def test_parse_size_mb_rejects_malformed_or_out_of_range(text: str) -> None:
    """Bad sizes raise InvalidInput naming the value and the accepted forms."""
    with pytest.raises(InvalidInput) as caught:
        parse_size_mb(text)
    assert repr(text) in caught.value.message
    assert "512M" in caught.value.hint and "10G" in caught.value.hint


# ---- parse_id_list -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("1", [1]),
        ("1,3,5-7", [1, 3, 5, 6, 7]),
        ("7,1,3,1", [1, 3, 7]),
        ("5-7,6,1-2", [1, 2, 5, 6, 7]),
        ("4-4", [4]),
        (" 2 , 1 ", [1, 2]),
    ],
)
def test_parse_id_list_expands_ranges_dedups_and_sorts(text: str, ids: list[int]) -> None:
    """'1,3,5-7' gives [1,3,5,6,7]; duplicates are dropped and the result is sorted."""
    assert parse_id_list(text) == ids


def test_parse_id_list_accepts_a_range_of_the_maximum_width() -> None:
    """A range of 100,001 ids (hi - lo == 100,000) is still accepted."""
    assert len(parse_id_list("1-100001")) == 100_001


@pytest.mark.parametrize(
    "text",
    ["", "0", "5-3", "a", "1,,2", "1,", "-1", "0-5", "1-2-3", "1-200000", "1.5", "9" * 30],
)
def test_parse_id_list_rejects_malformed_ids_and_huge_ranges(text: str) -> None:
    """Zero, reversed, non-numeric, empty and over-wide entries raise InvalidInput."""
    with pytest.raises(InvalidInput) as caught:
        parse_id_list(text)
    assert "1,3,5-7" in caught.value.hint


# ---- parse_dependency_ref ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ref"),
    [("12", 12), (" 12 ", 12), ("@", "@"), ("@~0", "@"), ("@~2", "@~2"), ("@~10", "@~10")],
)
def test_parse_dependency_ref_accepts_ids_and_shorthands(text: str, ref: int | str) -> None:
    """A positive id becomes an int; '@' and '@~N' are kept for the daemon to resolve;
    '@~0' is '@' (as git's HEAD~0)."""
    assert parse_dependency_ref(text) == ref


def test_dependency_lists_take_id_ranges() -> None:
    """'1,3,5-7,@' names 1, 3, 5, 6, 7 and '@', each once; a range past the bound is refused."""
    assert parse_dependency_list("1,3,5-7,@,3") == [1, 3, 5, 6, 7, "@"]
    with pytest.raises(InvalidInput, match="invalid dependency range"):
        parse_dependency_list("1-200000")
    with pytest.raises(InvalidInput, match="invalid dependency range"):
        parse_dependency_list("7-5")


@pytest.mark.parametrize("text", ["@~", "@~01", "@2", "x", "0", "", "-3", "~2"])
def test_parse_dependency_ref_rejects_malformed(text: str) -> None:
    """Bad dependency references raise InvalidInput naming the value and the accepted forms."""
    with pytest.raises(InvalidInput) as caught:
        parse_dependency_ref(text)
    assert repr(text) in caught.value.message
    assert "@~N" in caught.value.hint


# ---- parse_begin ---------------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    """Unix time of a UTC wall-clock time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("now", at(2026, 11, 23, 12, 0)),
        (" NOW ", at(2026, 11, 23, 12, 0)),
        ("+5", at(2026, 11, 23, 12, 5)),
        ("+30s", at(2026, 11, 23, 12, 0, 30)),
        ("now+2h", at(2026, 11, 23, 14, 0)),
        ("now+1d", at(2026, 11, 24, 12, 0)),
        ("now+10m", at(2026, 11, 23, 12, 10)),
        ("13:00", at(2026, 11, 23, 13, 0)),
        ("13:00:30", at(2026, 11, 23, 13, 0, 30)),
        ("11:00", at(2026, 11, 24, 11, 0)),
        ("today", at(2026, 11, 23)),
        ("tomorrow", at(2026, 11, 24)),
        ("2026-12-01", at(2026, 12, 1)),
        ("2026-12-01T08:30", at(2026, 12, 1, 8, 30)),
        ("2026-12-01 08:30:15", at(2026, 12, 1, 8, 30, 15)),
    ],
)
def test_parse_begin_forms(text: str, when: float) -> None:
    """now, +N minutes, now+N unit, HH:MM (next time it comes), today, tomorrow, dates."""
    assert parse_begin(text, NOW) == when


def test_parse_begin_reads_wall_clock_times_in_the_zone_of_now() -> None:
    """A date or clock time means local time: the zone of the aware `now` it is given."""
    tz = timezone(timedelta(hours=2))
    now = NOW.astimezone(tz)  # 14:00 local
    assert parse_begin("2026-12-01 08:30", now) == at(2026, 12, 1, 6, 30)
    assert parse_begin("15:00", now) == at(2026, 11, 23, 13, 0)
    assert parse_begin("13:00", now) == at(2026, 11, 24, 11, 0)
    assert parse_begin("tomorrow", now) == at(2026, 11, 23, 22, 0)


@pytest.mark.parametrize(
    "text",
    ["yesterday-ish", "25:00", "12:60", "+", "", "now+", "now-5", "+5x", "2026-13-01", "2026-12"],
)
def test_parse_begin_rejects_malformed(text: str) -> None:
    """Anything else is InvalidInput naming the value."""
    with pytest.raises(InvalidInput) as caught:
        parse_begin(text, NOW)
    assert repr(text) in caught.value.message


# ---- formatting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0, "00:00:00"),
        (59.9, "00:00:59"),
        (3661, "01:01:01"),
        (86399, "23:59:59"),
        (86400, "1-00:00:00"),
        (90061, "1-01:01:01"),
        (-5, "00:00:00"),
    ],
)
def test_format_duration_is_slurm_like(seconds: float | None, text: str) -> None:
    """'HH:MM:SS', with a 'D-' prefix past a day; '-' for unknown, negatives clamp to 0."""
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("mb", "text"),
    [(None, "-"), (1, "1M"), (512, "512M"), (1024, "1G"), (1536, "1.5G"), (24576, "24G")],
)
def test_format_size_mb_uses_m_below_a_gigabyte_and_g_above(mb: int | None, text: str) -> None:
    """Whole gigabytes print as 'NG', fractions with one decimal, small sizes as 'NM'."""
    assert format_size_mb(mb) == text


# ---- properties ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    days=st.integers(0, 3000),
    hours=st.integers(0, 23),
    minutes=st.integers(0, 59),
    seconds=st.integers(0, 59),
)
def test_slurm_day_form_round_trips_to_the_same_seconds(
    days: int, hours: int, minutes: int, seconds: int
) -> None:
    """'D-HH:MM:SS' parses to the seconds it spells, and format_duration spells it back."""
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total == 0:
        return
    text = f"{days}-{hours:02d}:{minutes:02d}:{seconds:02d}"
    assert parse_time_limit(text) == total
    assert parse_time_limit(format_duration(total)) == total


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**5))
def test_a_single_id_parses_to_itself(n: int) -> None:
    """parse_id_list(str(n)) == [n] for every positive id."""
    assert parse_id_list(str(n)) == [n]


def parse_begin_at_fixed_now(text: str) -> float:
    return parse_begin(text, NOW)


_PARSERS = [
    parse_time_limit,
    parse_size_mb,
    parse_id_list,
    parse_dependency_list,
    parse_dependency_ref,
    parse_slurm_dependency,
    parse_begin_at_fixed_now,
]


@pytest.mark.parametrize("parser", _PARSERS, ids=lambda f: f.__name__)
@settings(max_examples=200, deadline=None)
@given(text=st.text())
@example(text="²")
@example(text="١٢")
@example(text="9" * 5000)
@example(text="1-" + "9" * 5000)
@example(text="9" * 400 + "h")
@example(text="99:99:99")
@example(text="0001-01-01")
@example(text="9999-12-31 23:59:59")
@example(text="afterok:1?afterany:@~3")
def test_parsers_return_a_value_or_raise_invalid_input(parser: object, text: str) -> None:
    """Arbitrary text never escapes as anything but InvalidInput (no traceback for users)."""
    assert callable(parser)
    try:
        parser(text)
    except InvalidInput:
        pass


# ---- parse_array ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tasks", "throttle"),
    [
        ("1-3", [1, 2, 3], None),
        ("1-10:3", [1, 4, 7, 10], None),
        ("1,3,7", [1, 3, 7], None),
        ("0-4%2", [0, 1, 2, 3, 4], 2),
        ("5,1-2", [1, 2, 5], None),
    ],
)
def test_parse_array_accepts_slurm_forms(text: str, tasks: list[int], throttle: int | None) -> None:
    """Ranges, steps, lists and the %N throttle, as sbatch --array takes them."""
    assert parse_array(text) == (tasks, throttle)


@pytest.mark.parametrize("text", ["", "3-1", "1-x", "1-10:0", "1-3%0", "1-3%", "a", "1-200000"])
def test_parse_array_rejects_malformed(text: str) -> None:
    """A malformed array is InvalidInput naming the accepted forms."""
    with pytest.raises(InvalidInput):
        parse_array(text)


@given(st.integers(0, 10_000), st.integers(0, 500), st.integers(1, 50))
def test_parse_array_range_round_trips(first: int, span: int, step: int) -> None:
    """'A-B:S' gives exactly range(A, B + 1, S)."""
    assert parse_array(f"{first}-{first + span}:{step}")[0] == list(
        range(first, first + span + 1, step)
    )


# ---- sweeps --------------------------------------------------------------------------------


def test_param_lists_ranges_and_grids() -> None:
    """Comma lists, inclusive numeric ranges (decimals as written), the cartesian product."""
    assert parse_param("lr=0.1, 0.01") == ("lr", ["0.1", "0.01"])
    assert parse_param("bs=32:128:32") == ("bs", ["32", "64", "96", "128"])
    assert parse_param("x=0:1:0.25") == ("x", ["0", "0.25", "0.5", "0.75", "1"])
    assert parse_param("d=3:1") == ("d", ["3", "2", "1"])
    grid = sweep([("a", ["1", "2"]), ("b", ["x", "y"])])
    assert grid == [{"a": "1", "b": "x"}, {"a": "1", "b": "y"}, {"a": "2", "b": "x"},
                    {"a": "2", "b": "y"}]  # fmt: skip


@pytest.mark.parametrize("text", ["lr", "=1", "1x=2", "lr=", "lr=,", "r=1:x", "r=1:5:0", "r=5:1:1"])
def test_param_rejects_malformed(text: str) -> None:
    """A malformed --param is InvalidInput naming the accepted forms."""
    with pytest.raises(InvalidInput):
        parse_param(text)


def test_substitute_fills_placeholders_and_leaves_shell_variables() -> None:
    """{name} is filled; ${name} is left for the shell; an unknown {name} is an error."""
    assert substitute("t --lr {lr} ${HOME} {lr}", {"lr": "0.1"}, "command") == (
        "t --lr 0.1 ${HOME} 0.1"
    )
    with pytest.raises(InvalidInput, match=r"\{lrr\}"):
        substitute("t --lr {lrr}", {"lr": "0.1"}, "command")


@given(st.lists(st.from_regex(r"[A-Za-z0-9_.]{1,8}", fullmatch=True), min_size=1, max_size=6))
def test_param_value_lists_round_trip(values: list[str]) -> None:
    """Any list of plain values joined with commas parses back to the same values."""
    assert parse_param("p=" + ",".join(values)) == ("p", values)


# ---- parse_since ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW.timestamp() - 7200),
        ("30m", NOW.timestamp() - 1800),
        ("3d", NOW.timestamp() - 3 * 86400),
        ("1w", NOW.timestamp() - 7 * 86400),
        ("today", at(2026, 11, 23)),
        ("yesterday", at(2026, 11, 22)),
        ("2026-11-20", at(2026, 11, 20)),
        ("2026-11-20T08:30", at(2026, 11, 20, 8, 30)),
        ("1795000000", 1795000000.0),
    ],
)
def test_parse_since_forms(text: str, expected: float) -> None:
    """How long ago, named days, dates and Unix times, in the time zone of `now`."""
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["", "2y", "soon", "-2h", "2026-13-01"])
def test_parse_since_rejects_malformed(text: str) -> None:
    """A malformed --since is InvalidInput naming the accepted forms."""
    with pytest.raises(InvalidInput) as caught:
        parse_since(text, NOW)
    assert repr(text) in caught.value.message and "today" in caught.value.hint
