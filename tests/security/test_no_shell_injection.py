"""Values a user passes as data stay data: conda env names and sweep values are quoted."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import Gflow


def test_a_conda_env_path_holding_shell_code_stays_literal(gflow: Gflow, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    env = {**gflow.env, "PATH": "/usr/bin:/bin"}  # no conda: the job ends with the message
    job = gflow.submit("--conda-env", f"/x$(touch {pwned})", "true", env=env)
    ended = gflow.wait_state(job)
    assert ended["state"] == "Failed"
    assert not pwned.exists()
    log = Path(ended["log_path"]).read_text()
    assert f"cannot activate /x$(touch {pwned})" in log


def test_a_conda_env_name_that_is_an_option_is_refused(gflow: Gflow) -> None:
    done = gflow.run("gbatch", "--conda-env", "--help", "true")
    assert done.returncode == 2


def test_sweep_values_land_as_literal_words(gflow: Gflow, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    table = tmp_path / "params.csv"
    table.write_text(f'lr\n0.1\n"$(touch {pwned})"\n"a""b c"\n')
    out = tmp_path / "out"
    ids = gflow.ok(
        "gbatch", "--parsable", "--param-file", str(table),
        "--command", f"printf '%s|' {{lr}} \"x{{lr}}\" 'y{{lr}}' >> {out}",
    ).strip()  # fmt: skip
    first, last = map(int, ids.split("-"))
    for job in range(first, last + 1):
        assert gflow.wait_state(job)["state"] == "Finished"
    assert not pwned.exists()
    printed = out.read_text()
    assert f"$(touch {pwned})|x$(touch {pwned})|y$(touch {pwned})|" in printed
    assert 'a"b c|xa"b c|ya"b c|' in printed


def test_sweep_values_in_typed_words_stay_literal(gflow: Gflow, tmp_path: Path) -> None:
    out = tmp_path / "typed"
    ids = gflow.ok(
        "gbatch", "--parsable", "--param", 'v=$(id),"q"', "sh", "-c",
        f"printf '%s|' \"$1\" >> {out}", "sh", "val={v}",
    ).strip()  # fmt: skip
    first, last = map(int, ids.split("-"))
    for job in range(first, last + 1):
        gflow.wait_state(job)
    assert sorted(out.read_text().split("|")[:-1]) == ['val="q"', "val=$(id)"]
