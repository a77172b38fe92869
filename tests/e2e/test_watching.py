"""gqueue's filters and fields, gjob show/log -f, the tmux pane, dry runs, gstats."""

from __future__ import annotations

import json
import subprocess

from tests.helpers import BIN, Gflow, wait_for


def _gated_job(gflow: Gflow, name: str = "gate") -> tuple[int, str]:
    gate = gflow.workdir / name
    job_id = gflow.submit("bash", "-c", f"echo started; while [ ! -e {gate} ]; do sleep 0.02; done")
    return job_id, str(gate)


def test_gqueue_shows_active_jobs_by_default_and_all_with_a(gflow: Gflow) -> None:
    """Default: my Queued/Hold/Running jobs; -a adds ended ones; -s and -j filter."""
    done = gflow.submit("-J", "quick", "true")
    gflow.wait_state(done, "Finished")
    running, gate = _gated_job(gflow)
    held = gflow.submit("--hold", "-J", "waiting", "true")
    gflow.wait_state(running, "Running")

    def ids(*args: str) -> list[int]:
        return [j["id"] for j in json.loads(gflow.ok("gqueue", "--json", *args))["jobs"]]

    assert ids() == [running, held]
    assert ids("-a") == [done, running, held]
    assert ids("-s", "r") == [running]
    assert ids("-s", "FINISHED,hold") == [done, held]
    assert ids("-j", f"{done},{held}") == [done, held]
    assert ids("-u", "all") == [running, held]
    table = gflow.ok("gqueue", "-a").splitlines()
    assert table[0].split() == ["JOBID", "NAME", "ST", "TIME", "NODES", "NODELIST(REASON)"]
    assert table[1].split()[:3] == [str(done), "quick", "CD"]
    assert table[3].split()[:3] == [str(held), "waiting", "H"]
    assert table[3].split()[-1] == "(Held)"
    open(gate, "w").close()


def test_gqueue_fields_include_reason_exit_code_and_user(gflow: Gflow) -> None:
    """-f picks fields; REASON, EXITCODE and USER are among them."""
    job_id = gflow.submit("bash", "-c", "exit 5")
    gflow.wait_state(job_id)
    out = gflow.ok("gqueue", "-a", "-f", "jobid,st,reason,exitcode,user,timelimit")
    header, row = out.splitlines()
    assert header.split() == ["JOBID", "ST", "REASON", "EXITCODE", "USER", "TIMELIMIT"]
    user = gflow.job(job_id)["user"]
    assert row.split() == [str(job_id), "F", "NonZeroExit:5", "5", user, "UNLIMITED"]


def test_gjob_show_prints_every_field(gflow: Gflow) -> None:
    """State, reason, exit code, times, GPUs, log path, user and the event history."""
    job_id = gflow.submit("-J", "shown", "-t", "10:00", "bash", "-c", "exit 2")
    gflow.wait_state(job_id)
    text = gflow.ok("gjob", "show", str(job_id))
    for expected in (
        "JobId=",
        "Name=shown",
        "State=Failed (F)",
        "Reason=NonZeroExit:2",
        "ExitCode=2",
        "TimeLimit=00:10:00",
        "GPUIDs=-",
        "Submitted=",
        "Started=",
        "Ended=",
        f"Log={gflow.paths.logs_dir}/{job_id}.log",
        "User=",
        "submitted",
        "started",
        "ended",
    ):
        assert expected in text, (expected, text)


def test_gjob_log_follow_streams_until_the_job_ends(gflow: Gflow) -> None:
    """`gjob log -f` prints output as it comes and returns when the job has ended."""
    gate = gflow.workdir / "gate"
    job_id = gflow.submit(
        "bash", "-c", f"echo one; while [ ! -e {gate} ]; do sleep 0.02; done; echo two"
    )
    gflow.wait_state(job_id, "Running")
    follower = subprocess.Popen(
        [str(BIN / "gjob"), "log", "-f", str(job_id)],
        env=gflow.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None
    assert follower.stdout.readline() == "one\n"
    gate.touch()
    rest = follower.communicate(timeout=20)[0]
    assert rest == "two\n" and follower.returncode == 0


def test_running_jobs_output_is_visible_in_its_tmux_pane(gflow: Gflow) -> None:
    """What `gjob attach` shows: the live pane of the job's session."""
    job_id, gate = _gated_job(gflow)
    gflow.wait_state(job_id, "Running")
    session = gflow.job(job_id)["session"]

    def pane() -> str:
        return subprocess.run(
            ["tmux", "-S", str(gflow.paths.tmux_socket), "capture-pane", "-p", "-t", session],
            capture_output=True,
            text=True,
        ).stdout

    wait_for(lambda: "started" in pane(), what="the job's output in its pane")
    open(gate, "w").close()


def test_dry_run_submits_nothing(gflow: Gflow) -> None:
    """--dry-run shows the job and creates none."""
    out = gflow.ok("gbatch", "--dry-run", "-t", "1:00:00", "python", "train.py")
    assert "Would submit 1 batch job(s): python train.py" in out and "01:00:00" in out
    assert gflow.ok("gqueue", "-a") == "No jobs found.\n"


def test_submit_output_forms(gflow: Gflow) -> None:
    """Slurm's line by default, the id alone with --parsable, the job with --json."""
    assert gflow.ok("gbatch", "true").startswith("Submitted batch job ")
    assert gflow.ok("gbatch", "--parsable", "true").strip().isdigit()
    job = json.loads(gflow.ok("gbatch", "--json", "-J", "x", "true"))
    assert job["name"] == "x" and job["state"] in ("Queued", "Running", "Finished")


def test_gstats_counts_my_jobs(gflow: Gflow) -> None:
    """Counts per state and the success rate of ended jobs."""
    for argv in (("true",), ("true",), ("false",)):
        gflow.wait_state(gflow.submit(*argv))
    stats = json.loads(gflow.ok("gstats", "--json"))
    assert stats["total"] == 3
    assert len(stats["top_jobs"]) == 3 and stats["top_jobs"][0]["runtime_seconds"] > 0
    assert json.loads(gflow.ok("gstats", "--since", "1h", "--json"))["total"] == 3
    assert json.loads(gflow.ok("gstats", "--since", "2099-01-01", "--json"))["total"] == 0
    assert stats["counts"]["Finished"] == 2 and stats["counts"]["Failed"] == 1
    assert abs(stats["success_rate"] - 2 / 3) < 1e-9
