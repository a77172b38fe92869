"""Memory limits by the kernel: each job with a `--mem` in its own memory cgroup.

cgroup v2 (`memory.max`, `memory.oom.group`, the OOM count in `memory.events`) where the
unified hierarchy has the memory controller; cgroup v1 (`memory.limit_in_bytes`, the OOM
count in `memory.oom_control`) where the controller is bound to v1, as on these
machines. Job cgroups live below the daemon's own (`<ours>/gflow-<tag>/job-<id>`), so a
systemd unit with `Delegate=yes` owns its whole subtree. Where neither can be written
(not root, no controller), `detect` says so and the daemon polls RSS as before.

The wrapper waits until /proc/self/cgroup shows it inside its job's cgroup before it
forks the command, so every process of the job is born inside.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
RSS_POLLING = "rss polling"


@dataclass(frozen=True)
class CgroupMemory:
    """Job memory cgroups under `base`, of one cgroup version."""

    version: int  # 1 or 2
    base: Path  # a directory of ours: job-<id> directories go in it
    inside: str  # `base` as /proc/<pid>/cgroup names it (the wrapper checks this)

    def describe(self) -> str:
        return "cgroup v2 memory.max" if self.version == 2 else "cgroup v1 memory.limit_in_bytes"

    def path(self, job_id: int) -> Path:
        return self.base / f"job-{job_id}"

    def member_name(self, job_id: int) -> str:
        return f"{self.inside.rstrip('/')}/job-{job_id}"

    def create(self, job_id: int, limit_mb: int | None) -> None:
        """The job's cgroup, with its limit if it has one (a leftover is reused)."""
        path = self.path(job_id)
        path.mkdir(exist_ok=True)
        if not limit_mb:
            return
        limit = str(limit_mb * 1024 * 1024)
        if self.version == 2:
            _write(path / "memory.max", limit)
            _write(path / "memory.swap.max", "0", missing_ok=True)
            _write(path / "memory.oom.group", "1", missing_ok=True)
        else:
            _write(path / "memory.limit_in_bytes", limit)
            _write(path / "memory.memsw.limit_in_bytes", limit, missing_ok=True)

    def add(self, job_id: int, pid: int) -> None:
        _write(self.path(job_id) / "cgroup.procs", str(pid))

    def members(self, job_id: int) -> list[int]:
        """The pids in the job's cgroup now: the job's, wherever they went (setsid, a
        double fork, a dead wrapper): only the daemon puts a process in, children follow."""
        try:
            text = (self.path(job_id) / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(word) for word in text.split() if word.isdigit()]

    def kill(self, job_id: int, signum: int, spare: int | None = None) -> int:
        """Signal every process of the job's cgroup but `spare` (its live wrapper, which
        must record the end); each one through a pidfd, checked to be still inside, so a
        pid reused meanwhile is never hit. Returns how many were signalled."""
        sent = 0
        member = self.member_name(job_id)
        for pid in self.members(job_id):
            if pid == spare:
                continue
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if member in own_cgroups(pid).values():
                    signal.pidfd_send_signal(fd, signum)
                    sent += 1
            except OSError:
                pass
            finally:
                os.close(fd)
        return sent

    def oom_killed(self, job_id: int) -> bool:
        """Did the kernel kill a process of the job for its memory limit?"""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            text = (self.path(job_id) / name).read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value) > 0
        return False

    def close(self) -> None:
        """The daemon stops: empty job cgroups go (a running job keeps its own, for the
        next daemon to re-adopt), and its directory if nothing is left in it."""
        try:
            names = os.listdir(self.base)
        except OSError:
            return
        for name in names:
            if name.startswith("job-") and name[4:].isdigit() and not self.members(int(name[4:])):
                self.remove(int(name[4:]))
        try:
            os.rmdir(self.base)
        except OSError:
            pass

    def remove(self, job_id: int) -> None:
        """The job's cgroup, once empty (a process left in it keeps it: tried again later)."""
        try:
            os.rmdir(self.path(job_id))
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.info("cgroup of job %d not removed yet: %s", job_id, exc.strerror)


def _write(path: Path, value: str, missing_ok: bool = False) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def own_cgroups(pid: int | str = "self") -> dict[str, str]:
    """{controller or "" for v2: path} from /proc/<pid>/cgroup."""
    try:
        return parse_cgroups(Path(f"/proc/{pid}/cgroup").read_text())
    except OSError:
        return {}


def parse_cgroups(text: str) -> dict[str, str]:
    """'4:memory:/a\n0::/b' -> {"memory": "/a", "": "/b"} (v1 controllers, v2 as "")."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                found[controller] = parts[2]
    return found


def state_tag(state_dir: Path) -> str:
    """The name part of a daemon's cgroup directory: one per state directory."""
    import hashlib

    return hashlib.sha1(str(state_dir).encode()).hexdigest()[:10]


def detect(tag: str, root: Path = CGROUP_ROOT) -> CgroupMemory | None:
    """Which memory cgroups this daemon can make, trying v2 then v1; None: RSS polling."""
    if os.geteuid() != 0:
        return None
    ours = own_cgroups()
    name = f"gflow-{tag}"
    unified = root if (root / "cgroup.controllers").exists() else None
    if unified is not None and "" in ours:
        try:
            if "memory" in (unified / "cgroup.controllers").read_text().split():
                parent = unified / ours[""].lstrip("/")
                base = parent / name
                base.mkdir(exist_ok=True)
                if "memory" not in (base / "cgroup.controllers").read_text().split():
                    # Only where the parent holds no process itself (v2's rule): a
                    # delegated unit's daemon should sit in a leaf of its own.
                    _write(parent / "cgroup.subtree_control", "+memory")
                _write(base / "cgroup.subtree_control", "+memory")
                inside = f"{ours[''].rstrip('/')}/{name}"
                return CgroupMemory(2, base, inside)
        except OSError as exc:
            log.info("cgroup v2 memory controller not usable: %s", exc)
    if "memory" in ours and (root / "memory").is_dir():
        parent = root / "memory" / ours["memory"].lstrip("/")
        base = parent / name
        try:
            base.mkdir(exist_ok=True)
            if (base / "memory.limit_in_bytes").exists():
                return CgroupMemory(1, base, f"{ours['memory'].rstrip('/')}/{name}")
        except OSError as exc:
            log.info("cgroup v1 memory controller not usable: %s", exc)
    return None
