"""A job from submission to its recorded end, through the real daemon and real tmux."""

from __future__ import annotations

import os
import stat
import subprocess

import psutil

from tests.helpers import Gflow, wait_for


def test_queued_to_finished_records_exit_code_0(gflow: Gflow) -> None:
    """Queued -> Running -> Finished, with exit code 0, times and the log path."""
    job_id = gflow.submit("echo", "hello")
    job = gflow.wait_state(job_id)
    assert job["state"] == "Finished"
    assert job["exit_code"] == 0 and job["signal"] is None
    assert job["reason"] == "Completed"
    assert job["submitted_at"] <= job["started_at"] <= job["finished_at"]
    assert job["log_path"] == str(gflow.paths.logs_dir / f"{job_id}.log")
    assert [e["kind"] for e in job["events"]][:2] == ["submitted", "started"]


def test_nonzero_exit_is_failed_with_its_code(gflow: Gflow) -> None:
    """Running -> Failed, and the real exit code is stored (gflow 0.4 stores none)."""
    job = gflow.wait_state(gflow.submit("bash", "-c", "exit 7"))
    assert (job["state"], job["exit_code"], job["reason"]) == ("Failed", 7, "NonZeroExit:7")


def test_death_by_signal_shows_the_signal(gflow: Gflow) -> None:
    """A job killed by a signal is Failed with that signal, not an invented exit code."""
    job = gflow.wait_state(gflow.submit("bash", "-c", "kill -KILL $$"))
    assert (job["state"], job["signal"], job["exit_code"]) == ("Failed", 9, None)
    assert job["reason"] == "Signal:SIGKILL"
    shown = gflow.ok("gjob", "show", str(job["id"]))
    assert "Signal=9" in shown and "Reason=Signal:SIGKILL" in shown


def test_log_holds_only_the_programs_output(gflow: Gflow) -> None:
    """No shell prompt, no typed command, no carriage returns: just what the program printed."""
    job_id = gflow.submit("bash", "-c", "echo out; echo err >&2; printf 'no newline'")
    gflow.wait_state(job_id, "Finished")
    log = (gflow.paths.logs_dir / f"{job_id}.log").read_text()
    assert log == "out\nerr\nno newline"
    assert gflow.ok("gjob", "log", str(job_id)) == log
    assert gflow.ok("gjob", "log", str(job_id), "--first", "1") == "out\n"
    assert gflow.ok("gjob", "log", str(job_id), "--last", "1") == "no newline"


def test_job_sees_the_submitters_environment_without_gflow_on_path(gflow: Gflow) -> None:
    """Every variable and the PATH of the submitting shell reach the job, and the job ends
    correctly although no gflow command is on that PATH."""
    tools = gflow.home / "tools"
    tools.mkdir()
    tool = tools / "mytool"
    tool.write_text("#!/bin/sh\necho tool-ran\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    env = dict(gflow.env, ONLY_HERE="from-the-submitter", PATH=f"{tools}:/usr/bin:/bin")
    out = gflow.workdir / "sub"
    out.mkdir()
    job_id = gflow.submit(
        "bash",
        "-c",
        'echo "$ONLY_HERE"; mytool; pwd; command -v gbatch || echo no-gbatch; '
        'echo "id=$GFLOW_JOB_ID task=$GFLOW_ARRAY_TASK_ID cuda=[$CUDA_VISIBLE_DEVICES] '
        'order=$CUDA_DEVICE_ORDER"',
        env=env,
        cwd=out,
    )
    job = gflow.wait_state(job_id)
    assert job["state"] == "Finished", gflow.ok("gjob", "log", str(job_id))
    lines = gflow.ok("gjob", "log", str(job_id)).splitlines()
    assert lines == [
        "from-the-submitter",
        "tool-ran",
        str(out),
        "no-gbatch",
        f"id={job_id} task=0 cuda=[] order=PCI_BUS_ID",
    ]


def test_arguments_with_spaces_stay_one_argument(gflow: Gflow) -> None:
    """Command mode keeps each typed word, and $VARS expand in the job."""
    job_id = gflow.submit("printf", "[%s]\\n", "a b", "$GFLOW_JOB_ID", "it's")
    gflow.wait_state(job_id, "Finished")
    assert gflow.ok("gjob", "log", str(job_id)) == f"[a b]\n[{job_id}]\n[it's]\n"


def test_script_file_and_stdin_script(gflow: Gflow) -> None:
    """A script is copied at submission, so editing it afterwards changes nothing."""
    script = gflow.workdir / "job.sh"
    script.write_text("#!/bin/bash\necho from-script\n")
    first = gflow.submit("--hold", str(script))
    script.write_text("#!/bin/bash\necho edited\n")
    gflow.ok("gjob", "release", str(first))
    second = gflow.submit(input="echo from-stdin\nexit 3\n")
    assert gflow.wait_state(first)["state"] == "Finished"
    assert gflow.ok("gjob", "log", str(first)) == "from-script\n"
    job = gflow.wait_state(second)
    assert (job["state"], job["exit_code"]) == ("Failed", 3)
    assert gflow.ok("gjob", "log", str(second)) == "from-stdin\n"


def test_hold_then_release_runs_the_job(gflow: Gflow) -> None:
    """Queued -> Hold -> Queued -> Running."""
    job_id = gflow.submit("--hold", "true")
    assert gflow.job(job_id)["state"] == "Hold"
    assert gflow.job(job_id)["reason"] == "Held"
    assert gflow.ok("gjob", "release", str(job_id)) == f"Job {job_id} released.\n"
    assert gflow.wait_state(job_id)["state"] == "Finished"


def test_dependency_waits_for_success_and_cancels_on_failure(gflow: Gflow) -> None:
    """--depends-on starts after the parent finished; a failed parent cancels the chain."""
    gate = gflow.workdir / "gate"
    parent = gflow.submit("bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done")
    child = gflow.submit("--depends-on", str(parent), "echo", "child")
    gflow.wait_state(parent, "Running")
    assert gflow.job(child)["reason"] == "Dependency"
    gate.touch()
    assert gflow.wait_state(child)["state"] == "Finished"

    bad = gflow.submit("false")
    dependent = gflow.submit("-d", "@", "true")  # '@' is my latest job: `bad`
    grandchild = gflow.submit("-d", str(dependent), "true")
    assert gflow.wait_state(dependent)["reason"] == f"DependencyFailed:{bad}"
    assert gflow.wait_state(grandchild)["reason"] == f"DependencyFailed:{dependent}"


def test_tmux_session_closes_when_the_job_ends_unless_kept(gflow: Gflow) -> None:
    """Sessions of ended jobs don't pile up; --keep-session keeps one for reading."""
    gate = gflow.workdir / "gate"
    running = gflow.submit("bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done")
    kept = gflow.submit("--keep-session", "echo", "kept")
    gflow.wait_state(running, "Running")
    assert f"gflow-{running}" in gflow.tmux_sessions()
    gate.touch()
    gflow.wait_state(running)
    gflow.wait_state(kept)
    wait_for(lambda: f"gflow-{running}" not in gflow.tmux_sessions(), what="session to close")
    assert f"gflow-{kept}" in gflow.tmux_sessions()


def test_gflowd_stop_leaves_no_idle_tmux_server(gflow: Gflow) -> None:
    """The private tmux server is kept warm for a running daemon only: after `gflowd stop`
    it lives while a job's session does, then exits; the next daemon starts a new one."""
    gate = gflow.workdir / "gate"
    running = gflow.submit("bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done; exit 3")
    gflow.wait_state(running, "Running")
    gflow.ok("gflowd", "stop")
    assert gflow.tmux_sessions() == [f"gflow-{running}"]  # the job runs on
    gate.touch()
    wait_for(lambda: not _tmux_server_up(gflow), what="the idle tmux server to exit")
    gflow.start()
    assert gflow.wait_state(running)["exit_code"] == 3
    assert gflow.wait_state(gflow.submit("echo", "again"))["state"] == "Finished"


def _tmux_server_up(gflow: Gflow) -> bool:
    probe = ["tmux", "-S", str(gflow.paths.tmux_socket), "has-session"]
    said = subprocess.run(probe, capture_output=True, text=True, timeout=30).stderr
    return "no server running" not in said and "error connecting" not in said


def test_process_executor_runs_without_tmux(make_gflow: type[Gflow]) -> None:
    """executor = "process": same wrapper, no tmux session, same truthful end."""
    gflow = make_gflow(config='[daemon]\nexecutor = "process"\n')
    gflow.start()
    job = gflow.wait_state(gflow.submit("bash", "-c", "echo via-process; exit 4"))
    assert (job["state"], job["exit_code"], job["executor"]) == ("Failed", 4, "process")
    assert gflow.ok("gjob", "log", str(job["id"])) == "via-process\n"
    assert gflow.tmux_sessions() == []


def test_socket_is_private_and_status_reports_the_daemon(gflow: Gflow) -> None:
    """The socket is mode 0600; `gflowd status --json` has pid, uptime, version, executor."""
    assert stat.S_IMODE(os.stat(gflow.paths.socket).st_mode) == 0o600
    gflow.wait_state(gflow.submit("true"))
    import json

    info = json.loads(gflow.ok("gflowd", "status", "--json"))
    assert info["running"] is True and psutil.pid_exists(info["pid"])
    assert info["executor"] == "tmux" and info["version"] and info["uptime"] >= 0
    assert info["gpus"] == [] and info["jobs"] == {"Finished": 1}


def test_inner_shell_scripts_are_passed_as_typed(gflow: Gflow) -> None:
    """`bash -c '…'` reaches the inner shell untouched ($n, $(…) are its own); elsewhere only
    $NAME expands, never a command substitution."""
    inner = gflow.submit("bash", "-c", "n=3; echo $((n+1)) $(echo sub)")
    literal = gflow.submit("echo", "$(echo injected)", "cost$5", "$GFLOW_JOB_ID")
    gflow.wait_state(inner, "Finished")
    gflow.wait_state(literal, "Finished")
    assert gflow.ok("gjob", "log", str(inner)) == "4 sub\n"
    assert gflow.ok("gjob", "log", str(literal)) == f"$(echo injected) cost$5 {literal}\n"
