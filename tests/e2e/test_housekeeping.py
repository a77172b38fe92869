"""gcancel by filters and --dry-run, gctl purge, shell completion from the parsers."""

from __future__ import annotations

import json
import subprocess

from tests.helpers import BIN, Gflow, wait_for


def test_gcancel_by_state_and_name(gflow: Gflow) -> None:
    """-s and -n pick the caller's active jobs; others are left alone."""
    keep = gflow.submit("--hold", "-J", "keep", "true")
    drop = gflow.submit("--hold", "-J", "drop", "true")
    queued = gflow.submit("-d", str(keep), "-J", "drop", "true")
    assert gflow.ok("gcancel", "-s", "hold", "-n", "drop") == f"Job {drop} cancelled.\n"
    assert gflow.job(keep)["state"] == "Hold"
    assert gflow.job(queued)["state"] == "Queued"
    # Both named, both cancelled in one transaction: the dependent by the user, not by the
    # cascade (its reason says so).
    assert gflow.ok("gcancel", "-u", gflow.job(keep)["user"]) == (
        f"Job {keep} cancelled.\nJob {queued} cancelled.\n"
    )
    assert gflow.job(queued)["reason"] == "CancelledByUser"


def test_gcancel_dry_run_lists_the_cascade_and_changes_nothing(gflow: Gflow) -> None:
    """--dry-run names the job and the dependents the cascade would cancel."""
    root = gflow.submit("--hold", "-J", "root", "true")
    child = gflow.submit("-d", str(root), "-J", "child", "true")
    grandchild = gflow.submit("-d", str(child), "-J", "grandchild", "true")
    out = gflow.ok("gcancel", "--dry-run", str(root)).splitlines()
    assert out == [
        f"would cancel job {root} (root, Hold)",
        f"  and then job {child} (child), which depends on job {root}",
        f"  and then job {grandchild} (grandchild), which depends on job {child}",
    ]
    assert [gflow.job(i)["state"] for i in (root, child, grandchild)] == [
        "Hold",
        "Queued",
        "Queued",
    ]


def test_purge_forgets_old_ended_jobs_and_their_logs(gflow: Gflow) -> None:
    """gctl purge --before AGE removes ended jobs older than AGE, logs and all; ids stay."""
    old = gflow.submit("echo", "old")
    gflow.wait_state(old)
    log = gflow.paths.logs_dir / f"{old}.log"
    assert log.exists()
    assert (
        gflow.ok("gctl", "purge", "--before", "1d")
        == "Purged 0 ended job(s) older than 1-00:00:00.\n"
    )
    wait_for(  # once the job is more than a second old
        lambda: gflow.ok("gctl", "purge", "--before", "1s").startswith("Purged 1 ended job(s)"),
        what="the job to be purged",
    )
    assert not log.exists()
    assert json.loads(gflow.ok("gqueue", "-a", "--json"))["jobs"] == []
    assert gflow.submit("true") == old + 1  # ids are never reused


def test_completion_scripts_come_from_the_parsers() -> None:
    """`gbatch completion bash` completes gbatch's real flags; zsh loads the same via
    bashcompinit; an unknown shell is a usage error."""
    script = subprocess.run(
        [str(BIN / "gjob"), "completion", "bash"], capture_output=True, text=True, check=True
    ).stdout
    probe = (
        f"{script}\nCOMP_WORDS=(gjob update --max-r); COMP_CWORD=2; _gflow_gjob; "
        'echo "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["--max-retries"]
    zsh = subprocess.run([str(BIN / "gbatch"), "completion", "zsh"], capture_output=True, text=True)
    assert zsh.stdout.startswith("autoload -U +X bashcompinit") and "--gpu-memory" in zsh.stdout
    bad = subprocess.run(
        [str(BIN / "gqueue"), "completion", "fish"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1


def test_history_keep_forgets_ended_jobs_by_count_and_age_but_gstats_remembers(
    make_gflow: type[Gflow],
) -> None:
    """[history] keep_jobs keeps only the newest ended jobs; keep forgets the rest once they
    are that old, logs and all; gstats still counts every one of them."""
    gflow = make_gflow(config='[history]\nkeep = "5s"\nkeep_jobs = 2\n')
    gflow.start()
    ids = [gflow.submit("echo", str(n)) for n in range(4)]
    for job_id in ids:
        gflow.wait_state(job_id)
    logs = [gflow.paths.logs_dir / f"{job_id}.log" for job_id in ids]

    def listed() -> list[int]:
        return [j["id"] for j in json.loads(gflow.ok("gqueue", "-a", "--json"))["jobs"]]

    wait_for(lambda: listed() == ids[-2:], what="only the newest two ended jobs to be kept")
    assert [log.exists() for log in logs] == [False, False, True, True]
    wait_for(lambda: listed() == [], what="the last two to be forgotten once 5 s old")
    assert not any(log.exists() for log in logs)
    stats = json.loads(gflow.ok("gstats", "--json"))
    assert (stats["total"], stats["counts"]["Finished"]) == (4, 4)
    assert stats["top_jobs"] == []  # the runs themselves are gone
