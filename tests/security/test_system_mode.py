"""One machine, several people: the system daemon, with real users made by useradd.

alice and bob are two throwaway users; root runs `gflowd start --system` in a private
GFLOW_SYSTEM_ROOT, so the real /etc/gflow, /var/lib/gflow and /run/gflow are never touched.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.helpers import Gflow, wait_for
from tests.security.system import SystemGflow, Users, group_names, system, users

__all__ = ["system", "users"]  # fixtures

PROBE = (
    "import os; g = sorted(os.getgroups());"
    "print('ID', os.getuid(), os.getgid(), ','.join(map(str, g)),"
    " os.environ['HOME'], os.environ['USER'], os.environ['LOGNAME'], oct(os.umask(0)),"
    " 'CUDA=' + os.environ.get('CUDA_VISIBLE_DEVICES', 'unset'))\n"
    "try:\n    os.setuid(0); print('ROOT regained')\n"
    "except PermissionError: print('ROOT refused')\n"
    "caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('Cap')]\n"
    "print('CAPS', *caps)"
)


def _start(system: type[SystemGflow], config: str = "") -> SystemGflow:
    installation = system(config)
    installation.start()
    return installation


def test_users_find_the_system_daemon_and_status_says_so(
    system: type[SystemGflow], users: Users
) -> None:
    alice = users.user("alice")
    gf = _start(system)
    done = gf.as_user(alice, "gflowd", "status")
    assert done.returncode == 0, done.stderr
    assert f"Mode:     system ({gf.paths.socket})" in done.stdout
    info = json.loads(gf.as_user(alice, "gflowd", "status", "--json").stdout)
    assert info["mode"] == "system" and "system daemon" in info["why"]
    # The socket is everyone's to connect to; the state is root's.
    assert stat.S_IMODE(os.stat(gf.paths.socket).st_mode) == 0o666
    assert os.stat(gf.paths.state_dir).st_uid == 0
    # GFLOW_HOME names one daemon and never falls back to the system one.
    lonely = gf.as_user(alice, "gqueue", env={"GFLOW_HOME": f"{alice.home}/gf"})
    assert lonely.returncode == 1
    assert "gflowd is not running" in lonely.stderr and f"{alice.home}/gf" in lonely.stderr


def test_a_job_runs_as_its_submitter_and_its_files_are_theirs(
    system: type[SystemGflow], users: Users
) -> None:
    team = users.group("team")
    bob = users.user("bob", groups=(team,))
    gf = _start(system, '[gpu]\nfake = "1x24G"\n')
    # USER/LOGNAME in the request say alice: the job is still bob's, named from passwd.
    job = gf.submit(
        bob, "--gpus", "1", "python3", "-c", PROBE,
        env={"USER": "alice", "LOGNAME": "alice", "TMUX": "x"}, umask="027",
    )  # fmt: skip
    shown = gf.wait_state(job)
    assert shown["state"] == "Finished", shown
    assert shown["user"] == bob.name and shown["uid"] == bob.uid
    log = Path(shown["log_path"])
    out = log.read_text()
    ident = next(line for line in out.splitlines() if line.startswith("ID "))
    _, uid, gid, groups, home, user, logname, umask, cuda = ident.split()
    assert (int(uid), int(gid)) == (bob.uid, bob.gid)
    assert (umask, cuda) == ("0o27", "CUDA=0")  # as submitted; the GPU it was given
    assert group_names([int(g) for g in groups.split(",")]) == {bob.name, team}
    assert (home, user, logname) == (bob.home, bob.name, bob.name)
    assert "ROOT refused" in out
    caps = next(line for line in out.splitlines() if line.startswith("CAPS")).split()[1:]
    assert set(caps[:3]) == {"0000000000000000"}  # CapInh, CapPrm, CapEff
    assert caps[4] == "0000000000000000"  # CapAmb
    # Its directory and log are bob's, private, inside root's directories.
    job_dir = Path(shown["job_dir"])
    for path, mode in ((job_dir, 0o700), (log, 0o600), (log.parent, 0o700)):
        st = os.lstat(path)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (bob.uid, mode), path
    for path in (job_dir.parent, log.parent.parent, gf.paths.state_dir):
        assert os.lstat(path).st_uid == 0


def test_the_owner_attaches_to_a_tmux_server_of_their_own(
    system: type[SystemGflow], users: Users
) -> None:
    alice, bob = users.user("alice"), users.user("bob")
    gf = _start(system)
    job = gf.submit(bob, "sleep", "300")
    gf.wait_state(job, "Running")
    sock = gf.paths.user_tmux_socket(bob.uid)
    mine = subprocess.run(
        ["runuser", "-u", bob.name, "--", "tmux", "-S", str(sock), "has-session",
         "-t", f"=gflow-{job}"], capture_output=True, text=True,
    )  # fmt: skip
    assert mine.returncode == 0, mine.stderr
    servers = [
        p for p in psutil.process_iter(["name", "cmdline", "uids"])
        if p.info["name"] == "tmux: server" or (
            p.info["cmdline"] and p.info["cmdline"][0] == "tmux" and str(sock) in p.info["cmdline"]
        )
    ]  # fmt: skip
    assert servers and all(p.info["uids"].real == bob.uid for p in servers if str(sock) in
                           " ".join(p.info["cmdline"] or []))  # fmt: skip
    assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
    # The daemon tells the owner how to attach, and he is attached (on a terminal of
    # script(1)'s); it tells alice nothing.
    attach = gf.as_user_on_terminal(bob, "gjob", "attach", str(job))
    try:
        clients = ["runuser", "-u", bob.name, "--", "tmux", "-S", str(sock), "list-clients"]
        wait_for(
            lambda: subprocess.run(clients, capture_output=True, text=True).stdout.strip(),
            what="bob's gjob attach to reach his session",
        )
        subprocess.run(
            ["runuser", "-u", bob.name, "--", "tmux", "-S", str(sock), "detach-client", "-a"],
            capture_output=True,
        )  # fmt: skip
        subprocess.run(
            ["runuser", "-u", bob.name, "--", "tmux", "-S", str(sock), "detach-client"],
            capture_output=True,
        )  # fmt: skip
        assert attach.wait(timeout=20) == 0
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait()
    assert "belongs to" in gf.as_user(alice, "gjob", "attach", str(job)).stderr
    # grun, as bob, streams his job's output through the daemon.
    done = gf.as_user(bob, "grun", "echo", "through-the-daemon")
    assert done.returncode == 0 and "through-the-daemon" in done.stdout, done.stderr
    gf.as_user(bob, "gcancel", str(job))


def test_purge_never_follows_a_users_link_out_of_their_job(
    system: type[SystemGflow], users: Users
) -> None:
    bob = users.user("bob")
    gf = _start(system)
    victim = gf.root / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("root's")
    job = gf.submit(bob, "true")
    shown = gf.wait_state(job)
    job_dir, log = Path(shown["job_dir"]), Path(shown["log_path"])
    subprocess.run(
        ["runuser", "-u", bob.name, "--", "sh", "-c",
         f"ln -s {victim} {job_dir}/escape && rm -f {log} && ln -s {victim}/important.txt {log}"],
        check=True,
    )  # fmt: skip
    read = gf.as_user(bob, "gjob", "log", str(job))  # the daemon reads no link for him
    assert read.returncode == 1 and "root's" not in read.stdout
    assert "not a regular file" in read.stderr, read.stderr
    wait_for(
        lambda: "Purged 1 " in gf.root_run("gctl", "purge", "--before", "1s").stdout,
        what="the ended job to be purged",
    )
    assert (victim / "important.txt").read_text() == "root's"
    assert not job_dir.exists()


def test_alice_cannot_touch_bobs_job_and_user_bob_changes_nothing(
    system: type[SystemGflow], users: Users
) -> None:
    alice, bob = users.user("alice"), users.user("bob")
    gf = _start(system)
    running = gf.submit(bob, "sleep", "300")
    gf.wait_state(running, "Running")
    held = gf.submit(bob, "--hold", "sleep", "1")
    ended = gf.submit(bob, "echo", "secret-of-bob")
    gf.wait_state(ended)
    fake = {"USER": bob.name, "LOGNAME": bob.name}
    attempts = [
        ("gcancel", str(running)),
        ("gjob", "hold", str(running)),
        ("gjob", "release", str(held)),
        ("gjob", "update", str(held), "--priority", "99"),
        ("gjob", "redo", str(ended)),
        ("gjob", "log", str(ended)),
        ("gjob", "attach", str(running)),
    ]
    for argv in attempts:
        done = gf.as_user(alice, *argv, env=fake)
        assert done.returncode == 1, (argv, done.stdout, done.stderr)
        assert f"belongs to {bob.name}" in done.stderr, (argv, done.stderr)
        assert "secret-of-bob" not in done.stdout
    assert gf.job(running)["state"] == "Running"
    assert gf.job(held)["state"] == "Hold" and gf.job(held)["priority"] != 99
    # Everyone sees the queue, command lines included.
    listed = gf.as_user(alice, "gqueue", "-u", "all", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {j["id"] for j in json.loads(listed.stdout)["jobs"]} >= {running, held}
    # bob himself may read his log through the daemon, and attach names his own server.
    mine = gf.as_user(bob, "gjob", "log", str(ended))
    assert mine.returncode == 0 and "secret-of-bob" in mine.stdout, mine.stderr
    # alice's tmux cannot reach bob's server: the directory is his, 0700.
    bob_socket = gf.paths.user_tmux_socket(bob.uid)
    peek = subprocess.run(
        ["runuser", "-u", alice.name, "--", "tmux", "-S", str(bob_socket), "list-sessions"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert peek.returncode != 0
    assert os.stat(bob_socket.parent).st_uid == bob.uid
    gf.as_user(bob, "gcancel", str(running), str(held))


def test_admins_act_on_all_and_gctl_is_theirs_only(system: type[SystemGflow], users: Users) -> None:
    admins = users.group("adm")
    alice, bob, carol = users.user("alice"), users.user("bob"), users.user("carol", (admins,))
    gf = _start(system, f'admins = ["{alice.name}", "@{admins}"]\n')
    first = gf.submit(bob, "sleep", "300")
    second = gf.submit(bob, "sleep", "300")
    gf.wait_state(first, "Running")
    refused = gf.as_user(bob, "gctl", "set-gpus", "0")
    assert refused.returncode == 1 and "only an admin" in refused.stderr
    done = gf.as_user(alice, "gcancel", str(first))
    assert done.returncode == 0, done.stderr
    done = gf.as_user(carol, "gcancel", str(second))
    assert done.returncode == 0, done.stderr
    assert gf.wait_state(first)["state"] == "Cancelled"
    assert gf.wait_state(second)["state"] == "Cancelled"
    # A redo by an admin keeps the job bob's.
    redo = gf.as_user(alice, "gjob", "redo", str(first))
    assert redo.returncode == 0, redo.stderr
    new = int(redo.stdout.split("as job ")[1].split()[0].rstrip("."))
    assert gf.job(new)["uid"] == bob.uid
    gf.as_user(bob, "gcancel", str(new))
    # Only root stops the system daemon.
    stop = gf.as_user(alice, "gflowd", "stop", "--system")
    assert stop.returncode == 1


def test_a_forged_pid_record_signals_nothing_of_anyone_else(
    system: type[SystemGflow], users: Users
) -> None:
    alice, bob = users.user("alice"), users.user("bob")
    gf = _start(system)
    victim = gf.submit(bob, "sleep", "300")
    gf.wait_state(victim, "Running")
    bobs = [p for p in _processes_of(bob.uid) if "sleep" in " ".join(p.cmdline())]
    job = gf.submit(alice, "sleep", "300")
    shown = gf.wait_state(job, "Running")
    job_dir = Path(shown["job_dir"])
    forged = json.dumps({"wrapper_pid": bobs[0].pid, "pgid": bobs[0].pid, "start_ticks": None})
    subprocess.run(  # alice can write her own job's record; she says bob's sleep is hers
        ["runuser", "-u", alice.name, "--", "sh", "-c", f"printf '%s' '{forged}' > {job_dir}/pid"],
        check=True,
    )
    gf.kill_daemon()
    gf.start()
    assert gf.as_user(alice, "gcancel", str(job)).returncode == 0
    assert gf.wait_state(job)["state"] == "Cancelled"
    assert gf.job(victim)["state"] == "Running"
    assert all(p.is_running() for p in bobs)
    gf.as_user(bob, "gcancel", str(victim))


def test_kill_9_of_the_system_daemon_readopts_every_users_jobs(
    system: type[SystemGflow], users: Users
) -> None:
    alice, bob = users.user("alice"), users.user("bob")
    gf = _start(system)
    a = gf.submit(alice, "sh", "-c", "sleep 2; echo alice-done")
    b = gf.submit(bob, "sh", "-c", "sleep 2; echo bob-done")
    gf.wait_state(a, "Running")
    gf.wait_state(b, "Running")
    gf.kill_daemon()
    gf.start()
    for job, user, word in ((a, alice, "alice-done"), (b, bob, "bob-done")):
        shown = gf.wait_state(job)
        assert shown["state"] == "Finished" and shown["uid"] == user.uid, shown
        assert word in Path(shown["log_path"]).read_text()
        events = [e["kind"] for e in shown["events"]]
        assert events.count("launched") == 1  # nothing ran twice


def test_start_refuses_an_interpreter_other_users_cannot_run(
    system: type[SystemGflow], users: Users, tmp_path: Path
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    python = private / "python3"
    python.symlink_to("/usr/bin/python3")
    gf = system()
    gf.paths.config_file.write_text(f'[daemon]\nwrapper_python = "{python}"\n')
    done = gf.root_run("gflowd", "start", "--system", check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert str(private) in lines[0] or str(python) in lines[0], done.stderr
    assert not gf.paths.socket.exists()


def _is_tmux(proc: psutil.Process) -> bool:
    return proc.name().startswith("tmux")


def _processes_of(uid: int) -> list[psutil.Process]:
    def mine() -> list[psutil.Process]:
        return [
            p
            for p in psutil.process_iter(["uids", "status"])
            if p.info["uids"] and p.info["uids"].real == uid and p.info["status"] != "zombie"
        ]

    found: list[psutil.Process] = wait_for(mine, what=f"processes of uid {uid}")
    return found


def test_service_install_writes_units_and_enables_nothing(tmp_path: Path) -> None:
    from tests.helpers import BIN

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GFLOW_", "XDG_"))}
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [str(BIN / "gflowd"), "service", "install"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    unit = tmp_path / ".config/systemd/user/gflowd.service"
    assert "KillMode=process" in unit.read_text() and "--system" not in unit.read_text()
    assert "systemctl --user daemon-reload && systemctl --user enable --now" in done.stdout
    if os.geteuid() == 0:
        env["GFLOW_SYSTEM_ROOT"] = str(tmp_path / "root")
        done = subprocess.run(
            [str(BIN / "gflowd"), "service", "install", "--system"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        text = (tmp_path / "root/etc/systemd/system/gflowd.service").read_text()
        assert "Delegate=yes" in text and "KillMode=process" in text
        assert "-m gflow.daemon --system" in text
        assert "systemctl enable --now gflowd.service" in done.stdout


def test_a_mem_hog_is_killed_by_the_kernel_and_recorded_memory_limit(
    system: type[SystemGflow], users: Users
) -> None:
    bob = users.user("bob")
    gf = _start(system)
    status = gf.root_run("gflowd", "status", "--system").stdout
    line = next(x for x in status.splitlines() if x.startswith("Memory limits:"))
    if line.endswith("rss polling"):
        pytest.skip("no memory cgroup can be written here: the kernel cannot enforce --mem")
    assert "cgroup v" in line, status
    hog = "import signal; data = bytearray(400 * 1024 * 1024); data[::4096] = b'x' * len(data[::4096]); signal.pause()"  # noqa: E501
    job = gf.submit(bob, "--mem", "100M", "python3", "-c", hog)
    shown = gf.wait_state(job)
    assert (shown["state"], shown["reason"]) == ("Failed", "MemoryLimit"), shown
    assert shown["signal"] == 9  # the kernel's SIGKILL, not the RSS poll's SIGTERM
    fine = gf.submit(bob, "--mem", "100M", "python3", "-c", "print('small')")
    assert gf.wait_state(fine)["state"] == "Finished"


def test_a_socket_group_lets_only_its_members_in(system: type[SystemGflow], users: Users) -> None:
    members = users.group("gpu")
    alice, bob = users.user("alice", (members,)), users.user("bob")
    gf = _start(system, f'socket_group = "{members}"\n')
    st = os.stat(gf.paths.socket)
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, _gid(members))
    assert gf.as_user(alice, "gqueue").returncode == 0
    refused = gf.as_user(bob, "gqueue")
    assert refused.returncode == 1, refused.stderr
    assert f"not open to you: it is for the members of group {members}" in refused.stderr


def test_only_root_starts_or_stops_the_system_daemon(
    system: type[SystemGflow], users: Users
) -> None:
    alice = users.user("alice")
    gf = system()
    done = gf.as_user(alice, "gflowd", "start", "--system")
    assert done.returncode == 1 and "only root" in done.stderr, done.stderr
    assert not gf.paths.socket.exists()


def test_personal_status_says_its_mode_and_why(gflow: Gflow) -> None:
    out = gflow.ok("gflowd", "status")
    assert f"Mode:     personal ({gflow.paths.state_dir}); GFLOW_HOME names it" in out
    info = json.loads(gflow.ok("gflowd", "status", "--json"))
    assert (info["mode"], info["why"]) == ("personal", "GFLOW_HOME names it")
    assert info["memory_limits"] in (
        "cgroup v2 memory.max", "cgroup v1 memory.limit_in_bytes", "rss polling"
    )  # fmt: skip


def _gid(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


def test_what_escaped_a_dead_wrapper_is_stopped_through_the_jobs_cgroup(
    system: type[SystemGflow], users: Users
) -> None:
    bob = users.user("bob")
    gf = _start(system)
    if json.loads(gf.root_run("gflowd", "status", "--json").stdout)["memory_limits"] in (
        "rss polling", "off"
    ):  # fmt: skip
        pytest.skip("no cgroup can be made here: orphans of a dead wrapper are not tracked")
    job = gf.submit(bob, "sh", "-c", "setsid sleep 123457 & wait")
    shown = gf.wait_state(job, "Running")
    escaped = wait_for(
        lambda: [p for p in _processes_of(bob.uid) if p.cmdline() == ["sleep", "123457"]],
        what="the job's setsid'd sleep",
    )[0]
    wrapper = next(  # python3 -I -S -c BOOT <job dir> (not the tmux server that started it)
        p for p in _processes_of(bob.uid) if p.cmdline()[-1:] == [shown["job_dir"]]
        and p.cmdline()[0].endswith("python3") and p.children() and not _is_tmux(p)
    )  # fmt: skip
    wrapper.kill()  # the wrapper dies: nothing of its tree is left to signal
    assert gf.wait_state(job)["state"] != "Running"
    wait_for(lambda: not escaped.is_running() or escaped.status() == "zombie",
             what="the escaped sleep to be killed")  # fmt: skip


def test_a_slurm_script_runs_srun_as_its_user(system: type[SystemGflow], users: Users) -> None:
    bob = users.user("bob")
    gf = _start(system)
    script = Path(bob.home) / "job.sh"
    body = "#!/bin/bash\n#SBATCH --job-name=viasrun\nsrun sh -c 'echo srun-as-$(id -un)'\n"
    subprocess.run(
        ["runuser", "-u", bob.name, "--", "sh", "-c", f"cat > {script}"], input=body,
        text=True, check=True,
    )  # fmt: skip
    job = gf.submit(bob, str(script))
    shown = gf.wait_state(job)
    out = Path(shown["log_path"]).read_text() if Path(shown["log_path"]).exists() else ""
    slurm_out = Path(bob.home) / f"slurm-{job}.out"
    out += slurm_out.read_text() if slurm_out.exists() else ""
    assert shown["state"] == "Finished", (shown, out)
    assert f"srun-as-{bob.name}" in out
