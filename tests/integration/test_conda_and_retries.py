"""--conda-env through conda's shell hook, and --max-retries as linked attempts."""

from __future__ import annotations

import stat

from tests.helpers import Gflow

# A stand-in conda: its shell hook defines a `conda` function that records what it was asked.
FAKE_CONDA = """#!/bin/sh
if [ "$1" = shell.bash ] && [ "$2" = hook ]; then
  cat <<'HOOK'
conda() {
  echo "conda $*" >> "$CONDA_RECORD"
  [ "$1" = activate ] && export CONDA_DEFAULT_ENV="$2"
}
HOOK
  exit 0
fi
exit 1
"""


def _env_with_fake_conda(gflow: Gflow) -> dict[str, str]:
    tools = gflow.home / "conda-bin"
    tools.mkdir()
    conda = tools / "conda"
    conda.write_text(FAKE_CONDA)
    conda.chmod(conda.stat().st_mode | stat.S_IEXEC)
    record = gflow.home / "conda.log"
    return dict(gflow.env, PATH=f"{tools}:/usr/bin:/bin", CONDA_RECORD=str(record))


def test_conda_env_is_activated_with_conda_s_hook(gflow: Gflow) -> None:
    """--conda-env NAME: the hook is evaluated and `conda activate NAME` runs before the job."""
    env = _env_with_fake_conda(gflow)
    job_id = gflow.submit("--conda-env", "torch2", "bash", "-c", "echo env=$CONDA_DEFAULT_ENV",
                          env=env)  # fmt: skip
    job = gflow.wait_state(job_id)
    assert job["state"] == "Finished" and job["conda_env"] == "torch2"
    assert gflow.ok("gjob", "log", str(job_id)) == "env=torch2\n"
    assert (gflow.home / "conda.log").read_text() == "conda activate torch2\n"


def test_command_mode_defaults_to_the_submitting_conda_env(gflow: Gflow) -> None:
    """In command mode, $CONDA_DEFAULT_ENV of the submitting shell is the job's env."""
    env = dict(_env_with_fake_conda(gflow), CONDA_DEFAULT_ENV="research")
    job_id = gflow.submit("true", env=env)
    assert gflow.wait_state(job_id)["conda_env"] == "research"
    assert (gflow.home / "conda.log").read_text() == "conda activate research\n"


def test_missing_conda_fails_the_job_with_a_clear_line(gflow: Gflow) -> None:
    """No conda on the job's PATH: Failed, exit 127, and the log says why."""
    env = dict(gflow.env, PATH="/usr/bin:/bin")
    job = gflow.wait_state(gflow.submit("--conda-env", "torch2", "true", env=env))
    assert (job["state"], job["exit_code"]) == ("Failed", 127)
    log = gflow.ok("gjob", "log", str(job["id"]))
    assert log == "gflow: conda is not on PATH; cannot activate torch2\n"


def test_failed_job_is_retried_as_new_attempts(gflow: Gflow) -> None:
    """--max-retries 2 on a job that fails twice then succeeds: three linked attempts, and a
    dependent waits for the attempt that succeeds."""
    counter = gflow.workdir / "tries"
    script = f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; [ $n -ge 2 ]"
    first = gflow.submit("--max-retries", "2", "bash", "-c", script)
    dependent = gflow.submit("--depends-on", str(first), "echo", "after")
    assert gflow.wait_state(first)["state"] == "Failed"
    assert gflow.wait_state(dependent)["state"] == "Finished"
    shown = gflow.job(first)
    attempts = shown["attempts"]
    assert len(attempts) == 3 and attempts[0] == first
    states = [gflow.wait_state(i)["state"] for i in attempts]
    assert states == ["Failed", "Failed", "Finished"]
    assert [gflow.job(i)["attempt"] for i in attempts] == [1, 2, 3]
    assert gflow.job(dependent)["started_at"] >= gflow.job(attempts[-1])["finished_at"]


def test_cancelled_and_timed_out_jobs_are_not_retried(gflow: Gflow) -> None:
    """A cancel is never retried; a timeout only with --retry-on timeout."""
    timed_out = gflow.submit("--max-retries", "1", "--time", "1s", "sleep", "30")
    retried = gflow.submit("--max-retries", "1", "--retry-on", "timeout", "--time", "1s",
                           "sleep", "30")  # fmt: skip
    assert gflow.wait_state(timed_out, timeout=30)["state"] == "Timeout"
    assert gflow.wait_state(retried, timeout=30)["state"] == "Timeout"
    assert gflow.job(timed_out)["attempts"] == [timed_out]
    assert len(gflow.job(retried)["attempts"]) == 2
