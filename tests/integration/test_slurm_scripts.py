"""Slurm job scripts written as people write them (tests/fixtures/slurm), submitted with
`gbatch SCRIPT` and checked field by field against what Slurm would do; some are run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Gflow, wait_for

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "slurm"


def copy(gflow: Gflow, name: str) -> str:
    shutil.copy(CORPUS / name, gflow.workdir / name)
    return name


def submit(gflow: Gflow, *args: str) -> list[dict[str, Any]]:
    out = json.loads(gflow.ok("gbatch", "--json", *args))
    return out if isinstance(out, list) else [out]


# (script, what its #SBATCH lines ask for, as Slurm reads them on one machine)
FIELDS = [
    ("train_gpu.sbatch", {"name": "resnet50-train", "gpus": 1, "cpus": 2, "memory_mb": 2048,
                          "time_limit": 7200}),
    ("array_sweep.sh", {"name": "sweep", "cpus": 1, "time_limit": 600, "max_concurrent": 2}),
    ("strict.sh", {"cpus": 1, "memory_mb": 100, "time_limit": 300}),
    ("launcher.slurm", {"name": "ddp", "cpus": 2, "time_limit": 300}),
    ("eval.py", {"name": "eval", "time_limit": None, "exclusive": True, "gpus": 0}),
    ("singleton.sh", {"name": "nightly", "memory_mb": 0}),
    ("accelerate.sh", {"name": "llm-finetune", "gpus": 2, "cpus": 2, "memory_mb": 2048,
                       "time_limit": 86400}),
    ("deepspeed.sbatch", {"gpus": 2, "cpus": 2, "memory_mb": 0, "time_limit": 7200,
                          "auto_cancel": False}),
    ("lightning.sh", {"name": "lit", "gpus": 1, "time_limit": 1800, "cpus": 0}),
    ("university.slurm", {"name": "matlab sim", "cpus": 1, "memory_mb": 500,
                          "time_limit": 1800}),
]  # fmt: skip


@pytest.mark.parametrize(("script", "expected"), FIELDS, ids=[f[0] for f in FIELDS])
def test_corpus_is_read_as_slurm_reads_it(
    make_gflow: type[Gflow], script: str, expected: dict[str, Any]
) -> None:
    """Every field a script's directives set lands in the job; nothing is 'not used'."""
    gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    (gflow.workdir / "logs").mkdir()
    jobs = submit(gflow, "--hold", copy(gflow, script))
    expected = {**expected, "state": "Hold"}
    for key, value in expected.items():
        assert jobs[0][key] == value, key
    if script == "array_sweep.sh":
        assert [j["array_task_id"] for j in jobs] == [0, 1, 2, 3, 4]
        assert {j["array_job_id"] for j in jobs} == {jobs[0]["id"]}


def test_hpc_centre_script_gets_one_note_per_flag_it_cannot_honour(
    make_gflow: type[Gflow],
) -> None:
    """Account, partition, QOS, constraint and hint: one note each, saying what happens
    instead; none of them, and nothing honoured, is called 'not used'. --mail-type with no
    address to mail: one note too."""
    gflow = make_gflow(fake_gpus="2x24G")
    gflow.start()
    done = gflow.run("gbatch", "--dry-run", copy(gflow, "deepspeed.sbatch"))
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "note:" in line]
    flags = [note.split("#SBATCH ", 1)[1].split(":", 1)[0] for note in notes]
    assert flags == ["--account", "--partition", "--qos", "--constraint", "--hint"]
    assert "--mail-type without --mail-user: no mail is sent" in done.stderr
    assert not any("not used" in note for note in notes)
    assert "It could run here" in done.stdout


def test_a_missing_output_directory_refuses_the_script(gflow: Gflow) -> None:
    """accelerate.sh writes to logs/: without that directory it is refused, in one line."""
    done = gflow.run("gbatch", copy(gflow, "accelerate.sh"))
    assert done.returncode == 2 and "directory logs does not exist" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_array_begin_in_slurm_units(gflow: Gflow) -> None:
    """--begin=now+30minutes on every task of the array; %A is the first id."""
    jobs = submit(gflow, copy(gflow, "university.slurm"))
    assert len(jobs) == 3
    for job in jobs:
        assert 1700 < job["begin_at"] - job["submitted_at"] < 1900
        assert job["reason"] in (None, "BeginTime")


def test_singleton_waits_for_my_jobs_of_the_same_name(gflow: Gflow) -> None:
    """--dependency=singleton: the second 'nightly' waits for the first; --begin=now+3600 is
    an hour (Slurm's seconds), not 60 hours."""
    first = submit(gflow, copy(gflow, "singleton.sh"))[0]
    second = submit(gflow, "singleton.sh")[0]
    assert first["dependencies"] == []
    assert second["dependencies"] == [{"job": first["id"], "kind": "afterany"}]
    assert 3500 < first["begin_at"] - first["submitted_at"] < 3700


def test_a_failing_dash_e_script_ends_failed(gflow: Gflow) -> None:
    """`#!/bin/bash -e` stops at `false`: Failed, exit 1, the line after never runs."""
    job_id = gflow.submit(copy(gflow, "strict.sh"))
    job = gflow.wait_state(job_id)
    assert (job["state"], job["exit_code"]) == ("Failed", 1)
    log = Path(job["log_path"]).read_text()
    assert "before" in log and "after" not in log
    assert (gflow.workdir / f"slurm-{job_id}.out").read_text() == log  # sbatch's default file


def test_array_tasks_see_their_ids_and_write_their_own_output(gflow: Gflow) -> None:
    """SLURM_ARRAY_TASK_ID per task, SLURM_ARRAY_JOB_ID = the first job's id, %A_%a files."""
    jobs = submit(gflow, copy(gflow, "array_sweep.sh"))
    first = jobs[0]["id"]
    for job in jobs:
        assert gflow.wait_state(job["id"])["state"] == "Finished"
    for task in range(5):
        out = (gflow.workdir / f"sweep_{first}_{task}.log").read_text()
        assert out.startswith(f"task {task} of 5 (array {first}) lr=")


def test_srun_runs_each_task_and_args_reach_the_script(gflow: Gflow) -> None:
    """`gbatch launcher.slurm --model x`: $1… are the ARGS; srun runs --ntasks copies."""
    job_id = gflow.submit(copy(gflow, "launcher.slurm"), "--model", "x")
    job = gflow.wait_state(job_id)
    log = Path(job["log_path"]).read_text()
    assert job["state"] == "Finished", log
    assert "args: --model x master: " in log and "master: \n" not in log
    assert "rank 0 of 2" in log and "rank 1 of 2" in log


def test_a_python_script_runs_by_its_shebang(gflow: Gflow) -> None:
    """`#!/usr/bin/env python3` is run by python, with its arguments and SLURM_JOB_ID."""
    if not shutil.which("python3"):
        pytest.skip("no python3 on PATH")
    job_id = gflow.submit(copy(gflow, "eval.py"), "--split", "test")
    job = gflow.wait_state(job_id)
    assert job["state"] == "Finished"
    assert f"python eval ['--split', 'test'] {job_id}" in Path(job["log_path"]).read_text()


def test_output_file_named_by_pattern_is_written_as_the_job_runs(gflow: Gflow) -> None:
    """--output=%x-%j.out appears in the submit directory while the job still runs."""
    (gflow.workdir / "slow.sh").write_text(
        "#!/bin/bash\n#SBATCH -J slow --output=%x-%j.out\necho started\nsleep 30\n"
    )
    job_id = gflow.submit("slow.sh")
    out = gflow.workdir / f"slow-{job_id}.out"
    wait_for(lambda: out.exists() and "started" in out.read_text(), what="the output file")
    assert gflow.job(job_id)["state"] == "Running"
    gflow.ok("gcancel", str(job_id))


def test_cpu_cores_are_booked_and_the_job_pinned(gflow: Gflow) -> None:
    """-c 1 pins the job to one core; a request above the machine is refused naming CPUs."""
    (gflow.workdir / "pin.sh").write_text(
        "#!/bin/bash\n#SBATCH -c 1\npython3 -c 'import os; print(len(os.sched_getaffinity(0)))'\n"
    )
    job = gflow.wait_state(gflow.submit("pin.sh"))
    assert job["cpus"] == 1 and len(job["cpu_ids"]) == 1
    assert Path(job["log_path"]).read_text().strip() == "1"
    many = len(os.sched_getaffinity(0)) + 1
    done = gflow.run("gbatch", f"--cpus-per-task={many}", "true")
    assert done.returncode == 2 and f"asks for {many} CPUs" in done.stderr


def test_a_second_cpu_job_waits_for_cores(gflow: Gflow) -> None:
    """Two jobs that each want every core run one after the other: Resources:CPU."""
    cores = len(os.sched_getaffinity(0))
    first = gflow.submit(f"--cpus-per-task={cores}", "sleep", "30")
    gflow.wait_state(first, "Running")
    second = gflow.submit(f"--cpus-per-task={cores}", "true")
    wait_for(lambda: gflow.job(second)["reason"] == "Resources:CPU", what="Resources:CPU")
    gflow.ok("gcancel", str(first))
    assert gflow.wait_state(second)["state"] == "Finished"


def test_script_mode_refuses_what_is_neither_a_file_nor_a_command(gflow: Gflow) -> None:
    """A missing path or a directory is refused at submission in one line."""
    for word, message in (("./nope.sh", "no such file"), ("nope-cmd", "nor a file here"),
                          ("/tmp", "is a directory")):  # fmt: skip
        done = gflow.run("gbatch", word)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.splitlines()) == 1


def test_a_script_with_dos_line_breaks_is_refused(gflow: Gflow) -> None:
    """As sbatch: '\\r\\n' would make the shebang name 'bash\\r'; refused in one line."""
    (gflow.workdir / "dos.sh").write_bytes(b"#!/bin/bash\r\n#SBATCH -J x\r\necho hi\r\n")
    done = gflow.run("gbatch", "dos.sh")
    assert done.returncode == 2 and "DOS line breaks" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_dry_run_asks_the_daemon_and_shows_every_job(gflow: Gflow) -> None:
    """Every array task with its fields, and when it would start."""
    out = gflow.ok("gbatch", "--dry-run", copy(gflow, "array_sweep.sh"))
    assert out.count(" sweep ") == 5 and "sweep_%A_%a.log" in out
    assert "It could run here: it would start now" in out
    done = gflow.run("gbatch", "--dry-run", "--gpus", "3", "true")
    assert done.returncode == 2 and "GPU" in done.stderr
    assert gflow.ok("gqueue", "-a") == "No jobs found.\n"
