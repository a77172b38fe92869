"""Script directives: which header lines count and what #SBATCH keeps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gflow.cli.directives import DirectiveParser, directives_namespace, header_directives
from gflow.cli.gbatch import build_parser
from gflow.core.errors import InvalidInput


def test_header_directives_stop_at_the_first_command() -> None:
    """# GFLOW and #SBATCH lines count until the first line that is not a comment."""
    text = (
        "#!/bin/bash\n"
        "# GFLOW --gpus 1 --job-name='a b'\n"
        "\n"
        "# a plain comment\n"
        "#SBATCH --time=1:00:00 --partition gpu -J slurm\n"
        "echo run\n"
        "# GFLOW --priority 99\n"
    )
    assert header_directives(text) == [
        (2, ["--gpus", "1", "--job-name=a b"]),
        (5, ["--time=1:00:00", "--job-name", "slurm"]),
    ]


def test_commented_out_directives_are_ignored() -> None:
    """'## GFLOW' (as `gbatch new` writes the optional ones) is a comment."""
    assert header_directives("## GFLOW --gpus 1\n# GFLOW -J x\n") == [(2, ["-J", "x"])]


def test_directives_build_the_options_and_name_the_bad_line() -> None:
    """Each line is read by gbatch's own parser; an error names the file and line."""
    parser = build_parser(DirectiveParser)
    found = directives_namespace(parser, ("/s.sh", "# GFLOW -p 50\n# GFLOW --gpus 2\necho\n"))
    assert found is not None and (found.priority, found.gpus) == (50, 2)
    with pytest.raises(InvalidInput, match=r"^/s\.sh:2: "):
        directives_namespace(parser, ("/s.sh", "# GFLOW -p 50\n# GFLOW --time never\n"))
    with pytest.raises(InvalidInput, match="options only"):
        directives_namespace(parser, ("/s.sh", "# GFLOW --gpus 1 python x.py\n"))


@given(st.lists(st.sampled_from(["-J", "--time=5", "--gres=gpu:1", "--mem=1G", "--array=1-3"])))
def test_shared_sbatch_flags_are_kept_in_order(flags: list[str]) -> None:
    """The flags gflow shares with Slurm survive an #SBATCH line, in order."""
    line = "#SBATCH " + " ".join(f if f != "-J" else "-J name" for f in flags)
    expected: list[str] = []
    for flag in flags:
        expected += ["--job-name", "name"] if flag == "-J" else [flag]
    assert header_directives(line + "\n") == ([(1, expected)] if flags else [(1, [])])
