"""Identity in one place (daemon/identity.py), the system layout and how a CLI finds its
daemon (paths.py), the admins of the config, and a job's environment as its user."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from gflow.config import load_config
from gflow.core.errors import Forbidden, InvalidInput
from gflow.core.model import Job
from gflow.daemon.identity import (
    AccessPolicy,
    Caller,
    authorize,
    authorize_owner,
    caller_from_socket,
    require_admin,
)
from gflow.paths import Paths
from gflow.runner.as_user import RunAs, job_env, runnable_by_all, submitted_umask


def _job(uid: int, user: str, job_id: int = 12) -> Job:
    """What authorize reads of a job: its id and owner."""
    return cast(Job, SimpleNamespace(id=job_id, uid=uid, user=user))


def test_only_the_owner_or_an_admin_may_act_on_a_job() -> None:
    job = _job(2001, "bob")
    authorize(Caller(2001, "bob"), "cancel", job)
    authorize(Caller(3000, "root-ish", admin=True), "cancel", job)
    with pytest.raises(Forbidden, match=r"^job 12 belongs to bob; you cannot cancel it$"):
        authorize(Caller(2002, "alice"), "cancel", job)
    # attach is for the owner only: an admin attached as root would type as root.
    with pytest.raises(Forbidden, match="belongs to bob"):
        authorize_owner(Caller(0, "root", admin=True), "attach to", job)


def test_admins_are_root_the_configured_users_and_groups() -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    policy = AccessPolicy.from_config(owner_uid=0, system=True, admins=["alice", f"@{group}"])
    assert policy.is_admin(0, "root", 0, ())
    assert policy.is_admin(5000, "alice", 5000, ())
    assert not policy.is_admin(5001, "bob", 5001, ())
    assert policy.is_admin(5001, "bob", 5001, (os.getgid(),))
    with pytest.raises(Forbidden, match="only an admin"):
        require_admin(policy.caller(5001, 5001, ()), "change the usable GPUs")


def test_personal_mode_makes_the_owner_an_admin_and_system_mode_does_not() -> None:
    personal = AccessPolicy.from_config(owner_uid=1234, system=False, admins=[])
    system = AccessPolicy.from_config(owner_uid=1234, system=True, admins=[])
    assert personal.is_admin(1234, "me", 1234, ())
    assert not system.is_admin(1234, "me", 1234, ())


def test_the_caller_is_what_the_kernel_says() -> None:
    """SO_PEERCRED and SO_PEERGROUPS: our own uid and groups over a socket pair."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        caller = caller_from_socket(b, AccessPolicy(owner_uid=-1, system=True))
    assert caller.uid == os.geteuid() and caller.gid == os.getegid()
    assert caller.user == pwd.getpwuid(os.geteuid()).pw_name
    assert set(caller.groups) == set(os.getgroups())


def test_system_layout_is_under_the_test_root(tmp_path: Path) -> None:
    paths = Paths.for_system({"GFLOW_SYSTEM_ROOT": str(tmp_path)})
    assert paths.config_file == tmp_path / "etc/gflow/gflow.toml"
    assert paths.state_dir == tmp_path / "var/lib/gflow"
    assert paths.socket == tmp_path / "run/gflow/gflowd.sock"
    assert paths.user_tmux_socket(1001) == tmp_path / "run/gflow/users/1001/tmux.sock"
    assert paths.system and paths.mode == "system"
    real = Paths.for_system({})
    assert real.socket == Path("/run/gflow/gflowd.sock")
    assert real.config_file == Path("/etc/gflow/gflow.toml")


def _listen(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    return server


def test_the_cli_finds_the_system_daemon_but_a_personal_one_wins(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "h"), "GFLOW_SYSTEM_ROOT": str(tmp_path / "s")}
    assert not Paths.for_client(env).system  # none runs: personal, whose absence is named
    with _listen(Paths.for_system(env).socket):
        found = Paths.for_client(env)
        assert found.system and "system daemon" in found.why
        with _listen(Paths.from_env(env).socket):
            found = Paths.for_client(env)
            assert not found.system and "your own" in found.why
        # GFLOW_HOME names one daemon and never falls back.
        named = Paths.for_client({**env, "GFLOW_HOME": str(tmp_path / "gh")})
        assert not named.system and named.state_dir == tmp_path / "gh"


def test_admins_in_the_config_are_checked(tmp_path: Path) -> None:
    home = tmp_path / "gf"
    home.mkdir()
    (home / "gflow.toml").write_text('[daemon]\nadmins = ["alice", "@gpu-admins"]\n')
    paths = Paths.from_env({"GFLOW_HOME": str(home)})
    assert load_config(paths, {}).admins == ("alice", "@gpu-admins")
    (home / "gflow.toml").write_text('[daemon]\nadmins = ["al ice"]\n')
    with pytest.raises(InvalidInput, match=r"gflow.toml:2: daemon.admins: 'al ice'"):
        load_config(paths, {})
    (home / "gflow.toml").write_text('[daemon]\nwrapper_python = "python3"\n')
    with pytest.raises(InvalidInput, match="absolute path"):
        load_config(paths, {})


def test_a_jobs_environment_names_its_user_from_passwd() -> None:
    me = RunAs.of_uid(os.geteuid())
    env = job_env({"USER": "someone", "LOGNAME": "else", "TMUX": "/tmp/x", "A": "1"}, me)
    assert env["USER"] == env["LOGNAME"] == me.name
    assert "TMUX" not in env and env["A"] == "1"
    assert env["HOME"] == me.home  # none was submitted
    assert job_env({"HOME": "/elsewhere"}, me)["HOME"] == "/elsewhere"
    assert "XDG_RUNTIME_DIR" not in job_env({"XDG_RUNTIME_DIR": "/nonexistent/run"}, me)
    assert me.popen_args()["extra_groups"] == list(os.getgrouplist(me.name, me.gid))


def test_the_submitted_umask_is_read_strictly() -> None:
    assert submitted_umask({"GFLOW_UMASK": "0027"}) == 0o027
    assert submitted_umask({"GFLOW_UMASK": "9"}) == 0o022
    assert submitted_umask({"GFLOW_UMASK": "-1"}) == 0o022
    assert submitted_umask({}) == 0o022


def test_an_interpreter_below_a_private_directory_is_named() -> None:
    top = Path(tempfile.mkdtemp(prefix="gfid", dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        private = top / "private"
        private.mkdir(mode=0o700)
        (private / "python3").symlink_to("/bin/sh")
        assert runnable_by_all(private / "python3") == str(private)
        assert runnable_by_all(Path("/bin/sh")) == ""
    finally:
        shutil.rmtree(top)


def test_a_record_that_is_not_the_job_users_is_no_record(tmp_path: Path) -> None:
    """A hard link to another's file in the user's job directory is not their record."""
    from gflow.runner.jobfiles import read_exit

    (tmp_path / "exit").write_text('{"exit_code": 0, "signal": null, "ended_at": 1.0}')
    assert read_exit(tmp_path) is not None
    assert read_exit(tmp_path, owner=os.geteuid()) is not None
    assert read_exit(tmp_path, owner=os.geteuid() + 1) is None
