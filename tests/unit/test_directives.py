"""Script directives: which header lines count, and what each #SBATCH / # GFLOW form asks."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from gflow.cli.directives import DirectiveParser, given_only, header_directives, read_directives
from gflow.cli.gbatch import build_parser, build_spec, with_directives
from gflow.core.errors import InvalidInput


def given(text: str) -> dict[str, Any]:
    return read_directives(given_only(build_parser(DirectiveParser)), ("/s.sh", text)).given


def test_header_stops_at_the_first_command_and_directives_start_in_column_1() -> None:
    """Blank lines and comments continue the header; an indented #SBATCH is a comment."""
    text = (
        "#!/bin/bash\n"
        "# GFLOW --gpus 1 --job-name='a b'\n"
        "\n"
        "# a plain comment\n"
        "  #SBATCH --time=5\n"
        "#SBATCH --time=1:00:00 --partition gpu -J slurm\n"
        "echo run\n"
        "#SBATCH --priority 99\n"
    )
    lines = header_directives(text)
    assert [(d.line, d.args) for d in lines] == [
        (2, ["--gpus", "1", "--job-name=a b"]),
        (6, ["--time=1:00:00", "--job-name=slurm"]),
    ]
    assert lines[1].notes == ["--partition: one machine, no partitions; ignored"]


def test_a_trailing_comment_ends_a_directive() -> None:
    """`#SBATCH --gres=gpu:2   # GPUs per node` is --gres=gpu:2, as in sbatch."""
    found = given("#SBATCH --gres=gpu:2   # GPUs per node\n# GFLOW --priority 30 # why\n")
    assert found["gpus"].number == 2 and found["priority"] == 30


@pytest.mark.parametrize(
    ("line", "dest", "value"),
    [
        ("#SBATCH -Jname", "name", "name"),
        ("#SBATCH -t0:20:00", "time_limit", 1200),
        ("#SBATCH -t 30", "time_limit", 1800),
        ("#SBATCH --time=UNLIMITED", "time_limit", None),
        ("#SBATCH --time=0", "time_limit", None),
        ("#SBATCH -c4", "cpus_per_task", 4),
        ("#SBATCH -n 3", "ntasks", 3),
        ("#SBATCH --tasks=2", "ntasks", 2),
        ("#SBATCH --out=o-%j.txt", "output", "o-%j.txt"),
        ("#SBATCH -o log.txt -e err.txt", "error", "err.txt"),
        ("#SBATCH --begin=now+60", "begin", None),
        ("#SBATCH --exclusive", "exclusive", "node"),
        ("#SBATCH -N 1", "nodes", 1),
        ("#SBATCH --job-name 'two words'", "name", "two words"),
    ],
)
def test_sbatch_forms(line: str, dest: str, value: Any) -> None:
    """Short options attached or separate, abbreviations, quotes: what sbatch reads."""
    found = given(line + "\n")
    if dest == "begin":
        assert found["begin"] == pytest.approx(__import__("time").time() + 60, abs=5)
    else:
        assert found[dest] == value


@pytest.mark.parametrize(
    "spelling", ["--gpus=2", "--gpus 2", "-G 2", "-G2", "--gpus-per-node=2", "--gres=gpu:2"]
)
def test_every_gpu_spelling_asks_for_gpus(spelling: str) -> None:
    """No GPU spelling is 'not used': each asks for two GPUs."""
    assert given(f"#SBATCH {spelling}\n")["gpus"].number == 2


def test_gpu_types_and_gres_without_a_count() -> None:
    """--gres=gpu is one GPU; a type selects a model."""
    assert given("#SBATCH --gres=gpu\n")["gpus"].number == 1
    ask = given("#SBATCH --gpus=a100:3\n")["gpus"]
    assert (ask.number, ask.model) == (3, "a100")
    ask = given("#SBATCH --gres=gpu:v100:2\n")["gpus"]
    assert (ask.number, ask.model) == (2, "v100")


def test_gflow_lines_refuse_output_flags_and_name_the_line() -> None:
    """# GFLOW takes job options only; an error names the file and line."""
    with pytest.raises(InvalidInput, match=r"^/s\.sh:2: --dry-run"):
        given("# GFLOW -p 50\n# GFLOW --dry-run\n")
    with pytest.raises(InvalidInput, match=r"^/s\.sh:2: "):
        given("# GFLOW -p 50\n# GFLOW --time never\n")
    with pytest.raises(InvalidInput, match="options only"):
        given("# GFLOW --gpus 1 python x.py\n")


def test_sbatch_errors_name_the_line() -> None:
    """An unknown option, an ambiguous prefix and a stray word are refused with the line."""
    with pytest.raises(InvalidInput, match=r"line 1: unrecognized option --frobnicate"):
        given("#SBATCH --frobnicate\n")
    with pytest.raises(InvalidInput, match=r"line 1: option --o is ambiguous"):
        given("#SBATCH --o=x\n")
    with pytest.raises(InvalidInput, match="invalid directive 'python'"):
        given("#SBATCH -J x python\n")
    with pytest.raises(InvalidInput, match="one machine"):
        given("#SBATCH --nodes=2\n")


def spec_of(argv: list[str], text: str, tmp_path: Any) -> dict[str, Any]:
    parser = build_parser()
    args = parser.parse_args(argv)
    merged, _ = with_directives(parser, args, argv, (str(tmp_path / "s.sh"), text))
    return build_spec(merged, (str(tmp_path / "s.sh"), text))


def test_the_command_line_wins_flag_by_flag_in_every_spelling(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--gpus 4 beats --gres=gpu:1; -p 10 (the default value, typed) beats the script's."""
    monkeypatch.chdir(tmp_path)
    text = (
        "#!/bin/bash\n#SBATCH --gres=gpu:1 --mem=4G -J script\n"
        "# GFLOW --priority 50 --depends-on 7\n"
    )
    spec = spec_of(["--gpus", "4", "-p", "10", "--mem-per-cpu=1G", "--dependency", "afterany:3",
                    "--ntasks=2", "s.sh"], text, tmp_path)  # fmt: skip
    assert (spec["gpus"], spec["priority"], spec["name"]) == (4, 10, "script")
    assert spec["memory_mb"] == 2048 and spec["cpus"] == 2
    assert spec["dependencies"] == [{"job": 3, "kind": "afterany", "array": True}]
    assert spec["batch"]["output"] == "slurm-%j.out"  # sbatch's default for a Slurm script


def test_memory_forms(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """--mem=0 is all of it; per CPU times the cores; per GPU times the GPUs."""
    monkeypatch.chdir(tmp_path)
    assert spec_of(["s.sh"], "#SBATCH --mem=0\n", tmp_path)["memory_mb"] == 0
    text = "#SBATCH -c 3 --mem-per-cpu=2G\n"
    assert spec_of(["s.sh"], text, tmp_path)["memory_mb"] == 3 * 2048
    text = "#SBATCH --gpus-per-task=1 -n 2 --mem-per-gpu=10G\n"
    spec = spec_of(["s.sh"], text, tmp_path)
    assert (spec["gpus"], spec["memory_mb"], spec["cpus"]) == (2, 20480, 2)


def test_singleton_and_signal(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """--dependency=singleton and --signal=B:USR1@90 reach the request."""
    monkeypatch.chdir(tmp_path)
    spec = spec_of(["s.sh"], "#SBATCH --dependency=singleton --signal=B:USR1@90\n", tmp_path)
    assert spec["singleton"] and spec["dependencies"] == []
    assert spec["batch"]["signal"] == [10, 90, True]


def test_a_missing_output_directory_is_refused(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slurm fails such a job silently; gbatch refuses it at submission."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match="directory logs does not exist"):
        spec_of(["s.sh"], "#SBATCH --output=logs/%j.out\n", tmp_path)


def test_namespace_shape_is_argparse() -> None:
    """with_directives keeps a Namespace (every CLI module reads attributes)."""
    parser = build_parser()
    merged, notes = with_directives(
        parser, parser.parse_args(["x"]), ["x"], ("/s", "#SBATCH -J a -p gpu\n")
    )
    assert isinstance(merged, argparse.Namespace) and merged.name == "a"
    assert notes == ["/s:1: #SBATCH --partition: one machine, no partitions; ignored"]
