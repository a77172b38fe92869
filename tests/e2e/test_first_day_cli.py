"""What a new user reads on the first day (issue 14): big id sets, gcancel's dry run and
refusals, `--kill`."""

from __future__ import annotations

import json
import socket
import subprocess

from tests.helpers import BIN, Gflow, wait_for


def test_big_id_sets_work_in_gqueue_and_gcancel(gflow: Gflow) -> None:
    """`-j 1000-3000` on a short history, `-j 1-60000` and a 2,000-task array: answers, not
    protocol errors; an id list with no ranges is asked for in parts; no daemon traceback."""
    first = int(gflow.ok("gbatch", "--parsable", "--hold", "--array", "1-2000", "true")
                .split("-")[0])  # fmt: skip
    assert first == 1
    assert gflow.ok("gqueue", "-j", "3000-5000") == "No jobs found.\n"
    listed = gflow.ok("gqueue", "-j", "1-60000", "-f", "JOBID").split()
    assert listed == ["JOBID", *map(str, range(1, 2001))]
    odd = ",".join(str(i) for i in range(1, 2001, 2))  # 1,000 ids, none adjacent: ~4 KB
    assert len(gflow.ok("gqueue", "-j", odd, "-f", "JOBID").split()) == 1001
    done = gflow.run("gcancel", "--dry-run", "1000-3000")
    assert done.returncode == 1
    assert done.stderr == "gcancel: jobs 2001-3000 do not exist\n"
    assert done.stdout.count("would cancel job") == 1001
    assert "Traceback" not in gflow.paths.daemon_log.read_text()


def test_gcancel_dry_run_answers_as_the_real_run(gflow: Gflow) -> None:
    """A Finished job and an unknown id are refused by the dry run as by the real run, with
    the same lines and exit code; a name nothing has is exit 1 with one line."""
    finished = gflow.submit("true")
    gflow.wait_state(finished, "Finished")
    held = gflow.submit("--hold", "-J", "keep", "true")
    args = [str(finished), str(held), "77"]
    dry = gflow.run("gcancel", "--dry-run", *args)
    assert dry.returncode == 1
    assert dry.stdout == f"would cancel job {held} (keep, Hold)\n"
    assert gflow.job(held)["state"] == "Hold"
    real = gflow.run("gcancel", *args)
    assert real.returncode == 1
    assert sorted(real.stderr.splitlines()) == sorted(dry.stderr.splitlines())
    assert "gcancel: job 77 does not exist" in real.stderr
    assert f"cannot cancel job {finished}: it is Finished" in real.stderr
    assert real.stdout == f"Job {held} cancelled.\n"
    for argv in (["-n", "nosuchname"], ["--dry-run", "-n", "nosuchname"]):
        done = gflow.run("gcancel", *argv)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == "gcancel: no active job matches -n nosuchname\n"


def test_gcancel_kill_sends_sigkill_at_once(make_gflow: type[Gflow]) -> None:
    """`gcancel --kill`: a job that ignores SIGTERM is killed without the grace period."""
    gflow = make_gflow(config="[daemon]\nkill_grace = 600\n")
    gflow.start()
    job = gflow.submit("bash", "-c", "trap '' TERM; echo up; sleep 600")
    gflow.wait_state(job, "Running")
    out = gflow.ok("gcancel", "--kill", str(job))
    assert out == f"Job {job} cancelled.\n"  # within the 2 s a cancel waits: no grace
    ended = gflow.wait_state(job)
    assert (ended["state"], ended["signal"]) == ("Cancelled", 9)


def test_log_lines_are_newline_lines(gflow: Gflow) -> None:
    """`--first/--last N` count `\\n` only: a progress bar's `\\r` redraws are one line."""
    job = gflow.submit("printf", "10%%\\r50%%\\r100%%\\nsecond\\nthird\\n")
    gflow.wait_state(job, "Finished")

    def log(*flags: str) -> bytes:  # bytes: text mode would read each '\r' as a line end
        argv = [str(BIN / "gjob"), "log", str(job), *flags]
        return subprocess.run(argv, env=gflow.env, capture_output=True, check=True).stdout

    assert log("--first", "1") == b"10%\r50%\r100%\n"
    assert log("--last", "2") == b"second\nthird\n"
    assert log("--last", "3") == b"10%\r50%\r100%\nsecond\nthird\n"


def test_log_follow_waits_for_a_job_to_start(gflow: Gflow) -> None:
    """`gjob log -f` of a held job waits for it, then follows it to the end; `gjob attach`
    of a waiting job says it has not started and what to run instead."""
    job = gflow.submit("--hold", "echo", "hello")
    done = gflow.run("gjob", "attach", str(job))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "has not started yet (Hold" in done.stderr and f"gjob log -f {job}" in done.stderr
    follower = subprocess.Popen(
        [str(BIN / "gjob"), "log", "-f", str(job)], env=gflow.env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: "Hold" in str(gflow.job(job)["state"]), what="the job to be held")
        gflow.ok("gjob", "release", str(job))
        out, _ = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert (follower.returncode, out) == (0, "hello\n")


def test_show_says_what_attempts_are(gflow: Gflow) -> None:
    """A job never retried: its one attempt's id, said as such (not `Attempts=2`)."""
    job = gflow.submit("--hold", "true")
    assert f"AttemptJobIds={job} (one attempt: never retried)\n" in gflow.ok(
        "gjob", "show", str(job)
    )


def test_gqueue_csv_sorting_by_end_and_wide_names(gflow: Gflow) -> None:
    """`-o csv` ends lines with `\\n`; `-r end` sorts by end time (not started or running:
    last), `-r submitted` by submission; wide names keep the columns aligned; GPUS is a
    count and GPUIDS the indices."""
    slow = gflow.submit(
        "-J", "慢い作業", "bash", "-c", f"while [ ! -e {gflow.workdir}/go ]; do sleep 0.02; done"
    )
    fast = gflow.submit("-J", "fast", "true")
    gflow.wait_state(fast, "Finished")
    (gflow.workdir / "go").touch()
    gflow.wait_state(slow, "Finished")
    argv = [str(BIN / "gqueue"), "-a", "-o", "csv", "-f", "JOBID,NAME"]
    raw = subprocess.run(argv, env=gflow.env, capture_output=True, check=True).stdout
    assert raw == f"JOBID,NAME\n{slow},慢い作業\n{fast},fast\n".encode()
    assert gflow.ok("gqueue", "-c", "-r", "end", "-f", "JOBID").split()[1:] == [
        str(fast),
        str(slow),
    ]
    assert gflow.ok("gqueue", "-c", "-r", "submitted", "-n", "-1", "-f", "JOBID").split() == [
        "JOBID",
        str(fast),
    ]
    table = gflow.ok("gqueue", "-a", "-f", "NAME,GPUS,GPUIDS").splitlines()
    assert table == ["NAME      GPUS  GPUIDS", "慢い作業  0     -", "fast      0     -"]


def test_taskflow_and_grun_say_what_they_take(gflow: Gflow) -> None:
    """taskflow ps/show and gctl show-gpus take --json; taskflow's errors are taskflow's;
    `taskflow run` with nothing to run suggests its own form; grun's help has no --array
    (grun runs one job), and --array is refused in one line."""
    job = gflow.submit("--hold", "-J", "tf", "true")
    assert json.loads(gflow.ok("taskflow", "ps", "--json"))["jobs"][0]["id"] == job
    assert json.loads(gflow.ok("taskflow", "show", str(job), "--json"))[0]["name"] == "tf"
    assert json.loads(gflow.ok("gctl", "show-gpus", "--json")) == {"gpus": []}
    done = gflow.run("taskflow", "show", "4242")
    assert done.returncode == 1 and done.stderr.startswith("taskflow show: job 4242 does not")
    done = gflow.run("taskflow", "run")
    assert done.returncode == 2 and "--command" not in done.stderr
    assert "taskflow run [-m SIZE]" in done.stderr
    assert "--array" not in gflow.ok("grun", "--help")
    done = gflow.run("grun", "--array", "1-3", "true")
    assert done.returncode == 2 and "gbatch --array" in done.stderr


def test_an_over_long_request_line_is_one_log_line(gflow: Gflow) -> None:
    """A client that puts 3,000 ids in a URL (over aiohttp's 8 KB line) gets a 400; the
    daemon logs one warning, no traceback, and goes on answering."""
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(gflow.paths.socket))
    ids = ",".join(str(i) for i in range(1, 3000))
    sock.sendall(f"GET /api/v1/jobs?ids={ids} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert sock.recv(100).split(b" ")[1] == b"400"
    sock.close()
    log = wait_for(lambda: (t := gflow.paths.daemon_log.read_text()) and "malformed" in t and t)
    assert "Traceback" not in log and "refused a malformed HTTP request" in log
    assert gflow.ok("gqueue") == "No jobs found.\n"
