"""Running a job as the person who submitted it (system mode, the daemon being root).

Measured on these machines (shared/reference/multiuser.md): `Popen(user=, group=,
extra_groups=os.getgrouplist(...), umask=...)` gives the child the user's uid, gid and
groups and no capabilities; `user=` alone keeps root's gid and groups; `preexec_fn` is
unsafe with threads (and NSS after fork can deadlock). So everything here runs in the
launcher thread, before the Popen, and the Popen itself does the switch in C.

The user's tmux server runs as the user, on a socket in /run/gflow/users/<uid>/ (the
user's, 0700, inside root's 0755 users/): never a root server, which would give whoever
may attach to it a root shell. Files the user can write are untrusted: their directories
are made here by root, checked with lstat, and handed over with chown only after root's
own files in them are written.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from gflow.core.errors import Forbidden

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
# What a job must not inherit from the terminal it was submitted from.
_DROPPED = ("TMUX", "TMUX_PANE")


@dataclass(frozen=True)
class RunAs:
    """A job's Unix identity, from the password database (never from the request)."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str
    home: str
    shell: str

    @classmethod
    def of_uid(cls, uid: int) -> RunAs:
        """In the launcher thread: NSS (LDAP, SSSD) may be slow; never on the loop."""
        try:
            pw = pwd.getpwuid(uid)
        except KeyError:
            raise Forbidden(f"uid {uid} is not in the password database: not run") from None
        groups = tuple(os.getgrouplist(pw.pw_name, pw.pw_gid))
        return cls(uid, pw.pw_gid, groups, pw.pw_name, pw.pw_dir, pw.pw_shell or "/bin/sh")

    def popen_args(self) -> dict[str, object]:
        """subprocess.Popen's arguments that make the child this user, and only them."""
        return {
            "user": self.uid,
            "group": self.gid,
            "extra_groups": list(self.groups),
            "umask": 0o077,
            "cwd": "/",  # Popen changes directory before it drops root (a 0700 NFS home…)
        }

    def server_env(self) -> dict[str, str]:
        """The environment of the user's tmux server (the job gets its submitted one)."""
        return {
            "HOME": self.home,
            "USER": self.name,
            "LOGNAME": self.name,
            "SHELL": self.shell,
            "PATH": SAFE_PATH,
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
        }


def job_env(submitted: dict[str, str], who: RunAs) -> dict[str, str]:
    """The job's environment: what it was submitted with, but USER and LOGNAME are the
    submitter's name from the password database whatever the request said, HOME as
    submitted (passwd's where none was), no TMUX*, and XDG_RUNTIME_DIR only if it is
    still the user's own."""
    env = {k: v for k, v in submitted.items() if k not in _DROPPED}
    env["USER"] = env["LOGNAME"] = who.name
    env.setdefault("HOME", who.home)
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime is not None:
        try:
            st = os.lstat(runtime)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != who.uid:
                del env["XDG_RUNTIME_DIR"]
        except OSError:
            del env["XDG_RUNTIME_DIR"]
    return env


UMASK_VAR = "GFLOW_UMASK"  # the submitter's umask, sent by the CLI (as Slurm's SLURM_UMASK)


def submitted_umask(env: dict[str, str], default: int = 0o022) -> int:
    raw = env.get(UMASK_VAR, "")
    if len(raw) <= 4 and raw.isdigit() and all(c in "01234567" for c in raw):
        return int(raw, 8) & 0o777
    return default


def ensure_user_dir(parent: Path, name: str, who: RunAs) -> Path:
    """parent/name, a real directory owned by the user, 0700, inside root's `parent`:
    whatever else is there (a link, a file, a directory of someone else's) is replaced."""
    path = parent / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not (
        stat.S_ISDIR(st.st_mode) and st.st_uid == who.uid and stat.S_IMODE(st.st_mode) == 0o700
    ):
        from gflow.safefs import remove_entry

        remove_entry(parent, name)
        st = None
    if st is None:
        os.mkdir(path, 0o700)
        os.chown(path, who.uid, who.gid, follow_symlinks=False)
    return path


def hand_over(jobdir: Path, who: RunAs) -> None:
    """The job's directory, with the files root wrote in it, given to the user (files
    first, through descriptors; the directory last, so nothing of root's stays in it)."""
    dir_fd = os.open(jobdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for name in os.listdir(dir_fd):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                os.fchown(fd, who.uid, who.gid)
            finally:
                os.close(fd)
        os.fchown(dir_fd, who.uid, who.gid)
    finally:
        os.close(dir_fd)


def runnable_by_all(path: Path) -> str:
    """'' if every local user can run `path` (an interpreter) or read it (a package
    directory); else the first path on the way that stops them."""
    real = Path(os.path.realpath(path))
    for ancestor in [*reversed(path.absolute().parents), *reversed(real.parents)]:
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return str(ancestor)
    try:
        st = os.stat(real)
    except OSError:
        return str(real)
    needed = stat.S_IROTH | (
        stat.S_IXOTH if stat.S_ISDIR(st.st_mode) or path.suffix != ".py" else 0
    )
    return "" if st.st_mode & needed == needed else str(real)


def runs_as(pid: int, uid: int) -> bool:
    """Process `pid` has real and effective uid `uid` (read from /proc, now)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    real, effective = line.split()[1:3]
                    return int(real) == uid and int(effective) == uid
    except (OSError, ValueError):
        return False
    return False
