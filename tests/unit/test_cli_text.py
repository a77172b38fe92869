"""Text the CLI reads and writes: log lines, display widths, compact id lists (issue 14)."""

from __future__ import annotations

from gflow.cli.common import display_width, format_table
from gflow.cli.joblog import split_lines
from gflow.client import MAX_IDS_IN_URL, id_chunks
from gflow.core.parse import format_id_list, parse_id_list


def test_log_lines_end_at_newlines_only() -> None:
    """A progress bar's '\\r' redraws stay in one line; a last line without '\\n' counts."""
    assert split_lines(b"a\rb\nc\r\n\nd") == [b"a\rb\n", b"c\r\n", b"\n", b"d"]
    assert split_lines(b"x\n") == [b"x\n"]
    assert split_lines(b"") == []


def test_display_width_counts_wide_and_combining_characters() -> None:
    """East Asian wide characters take two columns, combining marks none."""
    assert display_width("abc") == 3
    assert display_width("慢い") == 4
    assert display_width("e\u0301") == 1


def test_table_aligns_by_display_width() -> None:
    """A wide name keeps the next column where an ASCII one would put it."""
    table = format_table(["NAME", "ST"], [["慢い", "R"], ["ab", "PD"]])
    assert table == "NAME  ST\n慢い  R\nab    PD\n"


def test_id_lists_are_sent_as_ranges_and_in_parts() -> None:
    """format_id_list is what parse_id_list reads back; a long list is cut in parts, each
    under the URL budget, that together are the whole list in order."""
    assert format_id_list([5, 1, 2, 3, 7, 8, 10]) == "1-3,5,7-8,10"
    assert format_id_list(list(range(1, 60001))) == "1-60000"
    big = list(range(1, 250_002))
    assert parse_id_list(format_id_list(big)[:30].rsplit(",", 1)[0])[0] == 1
    assert sum(len(parse_id_list(p)) for p in format_id_list(big).split(",")) == len(big)
    odd = format_id_list(list(range(1, 20_000, 2)))
    parts = id_chunks(odd)
    assert len(parts) > 1 and all(len(p) < MAX_IDS_IN_URL for p in parts)
    assert ",".join(parts) == odd
