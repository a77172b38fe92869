"""A one-node Slurm cluster from Debian's packages, in a temp dir, without systemd
(shared/reference/slurm.md): munged, slurmctld and slurmd on their own ports, two fake
GPUs as GRES (File= links to /dev/null: Debian's 22.05 drops file-less GPUs). Every
process is stopped by the pid recorded at its start, never by name."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

DAEMONS = ("slurmctld", "slurmd", "munged", "mungekey", "sbatch", "squeue")


def why_not() -> str:
    """Why a cluster cannot start here ('' if it can)."""
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        return f"Slurm is not installed ({', '.join(missing)} missing): see scripts/test.sh"
    if os.geteuid() != 0:
        return "a Slurm node that runs jobs as the test's users needs root"
    return ""


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no free pair of ports")


class Cluster:
    """Start it, use `env` for every Slurm client (and the daemon), stop it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gfslurm", dir="/tmp"))
        self.conf = self.root / "etc" / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.pids: list[int] = []
        self.port = _free_port_pair()

    def start(self) -> None:
        r, host = self.root, socket.gethostname().split(".")[0]
        for sub in ("etc", "state", f"spool/{host}", "log", "run", "munge", "dev"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(r, 0o755)
        os.chmod(r / "run", 0o755)
        os.chmod(r / "munge", 0o700)
        for index in range(2):
            (r / "dev" / f"nvidia{index}").symlink_to("/dev/null")
        key, sock = r / "munge" / "munge.key", r / "run" / "munge.socket"
        subprocess.run(["mungekey", "-c", "-f", "-k", str(key)], check=True, capture_output=True)
        # -F: munged stays our child, so it is stopped by the pid we hold.
        self._spawn(
            ["munged", "-F", f"--key-file={key}", f"--socket={sock}",
             f"--pid-file={r}/run/munged.pid", f"--log-file={r}/munge/munged.log",
             f"--seed-file={r}/munge/munged.seed"],
            "munged",
        )  # fmt: skip
        memory = psutil.virtual_memory().total // (1 << 20)
        user = "root"
        self.conf.write_text(
            f"""ClusterName=gftest
SlurmctldHost={host}(127.0.0.1)
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={self.port}
SlurmdPort={self.port + 1}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool/%n
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={r}/log/jobcomp.txt
EnforcePartLimits=ALL
GresTypes=gpu
ReturnToService=2
KillWait=2
MinJobAge=300
InactiveLimit=0
# more CPUs than the machine has: short jobs of several tests run side by side
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs=8 RealMemory={memory} Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
        )
        (r / "etc" / "gres.conf").write_text(f"Name=gpu File={r}/dev/nvidia[0-1]\n")
        self._wait(lambda: sock.exists(), "munged's socket")
        self._spawn(["slurmctld", "-D", "-c", "-f", str(self.conf)], "slurmctld")
        self._spawn(["slurmd", "-D", "-f", str(self.conf)], "slurmd")
        self._wait(lambda: self.run("sinfo", "-h", "-o", "%T").stdout.strip() == "idle", "idle")

    def _spawn(self, argv: list[str], name: str) -> None:
        out = open(self.root / "log" / f"{name}.stdout", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, start_new_session=True,
        )  # fmt: skip
        out.close()
        self.pids.append(proc.pid)

    def _wait(self, ready: object, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():  # type: ignore[operator]
            if time.monotonic() > deadline:
                log = self.root / "log" / "slurmctld.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"the Slurm cluster did not become {what}:\n{tail}")
            time.sleep(0.1)

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def stop_controller(self) -> None:
        """slurmctld down (as a dead controller): SIGTERM by its pid, wait for it."""
        proc = psutil.Process(self.pids[1])
        proc.terminate()
        proc.wait(10)

    def start_controller(self) -> None:
        """slurmctld back, recovering its jobs from its state directory (no -c)."""
        self._spawn_at(1, ["slurmctld", "-D", "-f", str(self.conf)], "slurmctld")
        self._wait(lambda: self.run("sinfo", "-h", "-o", "%T").returncode == 0, "answering")

    def _spawn_at(self, index: int, argv: list[str], name: str) -> None:
        self._spawn(argv, name)
        self.pids[index] = self.pids.pop()

    def drain(self, timeout: float = 20.0) -> None:
        """Cancel every job of this (private) cluster and wait for their steps to end:
        a slurmstepd outlives a stopped slurmd."""
        try:
            ids = self.run("squeue", "-h", "-o", "%A", timeout=15).stdout.split()
            if ids:
                self.run("scancel", *sorted(set(ids)), timeout=15)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                busy = self.run("squeue", "-h", "-t", "R,CG,CF,S", "-o", "%A", timeout=15)
                if busy.returncode != 0 or not busy.stdout.strip():
                    return
                time.sleep(0.2)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        """Cancel the jobs, then SIGTERM each daemon we started (slurmd first), SIGKILL
        what is left after 10 s."""
        self.drain()
        procs = []
        for pid in reversed(self.pids):  # slurmd, slurmctld, munged
            try:
                proc = psutil.Process(pid)
                proc.send_signal(signal.SIGTERM)
                procs.append(proc)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=10)
        for proc in alive:
            proc.kill()
        psutil.wait_procs(alive, timeout=5)
        for proc in procs:  # our children: reaped by Popen's owner (us) through waitpid
            try:
                os.waitpid(proc.pid, os.WNOHANG)
            except ChildProcessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
