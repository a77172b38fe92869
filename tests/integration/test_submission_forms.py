"""Parameter sweeps and script directives, through gbatch as a user types it."""

from __future__ import annotations

import json

from tests.helpers import Gflow


def names_and_logs(gflow: Gflow, ids: range) -> list[tuple[str, str]]:
    return [(gflow.wait_state(i)["name"], gflow.ok("gjob", "log", str(i)).strip()) for i in ids]


def test_param_grid_substitutes_the_command_and_names(gflow: Gflow) -> None:
    """Two --param lists make their cartesian product, first one outermost; ${VAR} is the
    shell's."""
    out = gflow.ok(
        "gbatch", "--param", "lr=0.1,0.01", "--param", "bs=32:64:32",
        "--name-template", "run_{lr}_{bs}", "echo", "lr={lr} bs={bs} ${GFLOW_JOB_ID}",
    )  # fmt: skip
    assert out == "Submitted batch sweep of 4 jobs: 1-4\n"
    assert names_and_logs(gflow, range(1, 5)) == [
        ("run_0.1_32", "lr=0.1 bs=32 1"),
        ("run_0.1_64", "lr=0.1 bs=64 2"),
        ("run_0.01_32", "lr=0.01 bs=32 3"),
        ("run_0.01_64", "lr=0.01 bs=64 4"),
    ]


def test_param_file_gives_one_job_per_row(gflow: Gflow) -> None:
    """--param-file: a CSV with a header row, one job per row."""
    (gflow.workdir / "grid.csv").write_text("model,seed\nresnet,1\nvit,2\n")
    gflow.ok("gbatch", "--param-file", "grid.csv", "echo", "{model}/{seed}")
    assert [log for _, log in names_and_logs(gflow, range(1, 3))] == ["resnet/1", "vit/2"]


def test_unknown_placeholder_is_refused_at_submission(gflow: Gflow) -> None:
    """A typo in a placeholder is an error now (exit 2, one line), not a failed job later."""
    done = gflow.run("gbatch", "--param", "lr=1,2", "python", "t.py", "--lr", "{lrr}")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "{lrr}" in done.stderr
    assert json.loads(gflow.ok("gqueue", "-a", "--json"))["jobs"] == []


def test_script_directives_and_the_command_line_wins(make_gflow: type[Gflow]) -> None:
    """# GFLOW and #SBATCH lines set options (dependencies too); the command line wins."""
    gflow = make_gflow(fake_gpus="1x24G")
    gflow.start()
    first = gflow.submit("true")
    gflow.wait_state(first)
    script = gflow.workdir / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        "# GFLOW --job-name=from-directive --priority=50\n"
        f"# GFLOW --depends-on {first} --gpus 1\n"
        "#SBATCH --time=0:30:00 --partition=big\n"
        "#SBATCH --mem=100M\n"
        "echo cuda=$CUDA_VISIBLE_DEVICES\n"
    )
    job_id = gflow.submit("-p", "7", "job.sh")
    job = gflow.wait_state(job_id)
    assert (job["name"], job["priority"], job["time_limit"]) == ("from-directive", 7, 1800)
    assert (job["gpus"], job["memory_mb"], job["depends_on"]) == (1, 100, [first])
    assert gflow.ok("gjob", "log", str(job_id)) == "cuda=0\n"


def test_bad_directive_names_the_script_line(gflow: Gflow) -> None:
    """A malformed directive: exit 2, the file and line named, nothing submitted."""
    (gflow.workdir / "bad.sh").write_text("#!/bin/bash\n\n# GFLOW --time soon\necho x\n")
    done = gflow.run("gbatch", "bad.sh")
    assert done.returncode == 2
    assert f"{gflow.workdir}/bad.sh:3:" in done.stderr and "'soon'" in done.stderr
    assert json.loads(gflow.ok("gqueue", "-a", "--json"))["jobs"] == []


def test_gbatch_new_writes_a_template_that_submits(gflow: Gflow) -> None:
    """gbatch new NAME writes NAME.sh (never over a file); it runs as written."""
    assert gflow.ok("gbatch", "new", "train").startswith("Wrote train.sh")
    assert gflow.run("gbatch", "new", "train").returncode == 2
    job = gflow.wait_state(gflow.submit("train.sh"))
    assert (job["state"], job["name"], job["time_limit"]) == ("Finished", "train", 3600)
