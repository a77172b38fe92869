"""Trusting nothing on disk: the state directory must be ours, and no link in it is followed.

Another local user who can write the state directory (or a directory above it) could plant
links that make the daemon truncate its owner's files, swap a job's spec, or replace the
database or socket. So the daemon (and `gflowd start`) refuses a state directory that is
not its own, tightens its own to 0700, and opens every file in it with O_NOFOLLOW; records
a job can write are read only as small regular files, without blocking on a FIFO.

Standard library only: `gflowd start` uses it on a CLI's start path.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from gflow.core.errors import Forbidden

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def ensure_private_dir(path: Path, uid: int | None = None, mode: int = PRIVATE_DIR) -> Path:
    """Create `path` (and missing parents) private, check every directory above it, and
    return its real path: the one to use from now on, so no link on the way can be changed
    under us. Refuses (Forbidden) a directory that is not ours or sits below one that
    another user can change."""
    uid = os.geteuid() if uid is None else uid
    old = os.umask(0o077)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    except OSError as exc:
        raise Forbidden(f"cannot create state directory {path}: {exc.strerror}") from None
    finally:
        os.umask(old)
    real = Path(os.path.realpath(path))
    _check_ancestors(real, uid, shown=path)
    _own_private_dir(real, uid, shown=path, mode=mode)
    return real


def ensure_private_subdir(
    parent: Path, name: str, uid: int | None = None, mode: int = PRIVATE_DIR
) -> Path:
    """A directory right below a checked one (logs/, jobs/): ours, real, 0700 (or `mode`:
    the system daemon's 0711 jobs/ and logs/, which users pass through to their own)."""
    uid = os.geteuid() if uid is None else uid
    path = parent / name
    try:
        os.mkdir(path, PRIVATE_DIR)
    except FileExistsError:
        pass
    _own_private_dir(path, uid, shown=path, mode=mode)
    return path


def _check_ancestors(real: Path, uid: int, shown: Path) -> None:
    """Every directory above ours: its owner is us or root, and nobody else may rename
    entries in it (not writable by group or others, unless root's and sticky, like /tmp)."""
    for ancestor in reversed(real.parents):
        st = os.stat(ancestor)
        if st.st_uid not in (uid, 0):
            raise Forbidden(
                f"state directory {shown} is below {ancestor}, which belongs to "
                f"{_user(st.st_uid)}: another user could replace it",
                hint="use a directory of your own, e.g. under your home (GFLOW_HOME=~/gflow)",
            )
        writable_by_others = st.st_mode & 0o022
        safe_sticky = st.st_mode & stat.S_ISVTX and st.st_uid == 0
        if writable_by_others and not safe_sticky:
            raise Forbidden(
                f"state directory {shown} is below {ancestor}, which others can write "
                f"(mode {stat.S_IMODE(st.st_mode):o})",
                hint=f"chmod go-w {ancestor}, or use a directory of your own",
            )


def _own_private_dir(path: Path, uid: int, shown: Path, mode: int = PRIVATE_DIR) -> None:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise Forbidden(
            f"{shown} is not a directory (a link or a file)",
            hint=f"remove it; gflow creates {path.name} itself",
        )
    if st.st_uid != uid:
        raise Forbidden(
            f"state directory {shown} belongs to {_user(st.st_uid)}, not to you",
            hint="remove it (as its owner or root) or set GFLOW_HOME to a directory of your own",
        )
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


def _user(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def open_private(path: Path | str, flags: int, mode: int = PRIVATE_FILE) -> int:
    """os.open that never follows a link at the last component; new files are private."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def tighten_file(path: Path) -> None:
    """An existing file of ours made 0600, through a descriptor (no link followed); a link
    or anything but a regular file in its place is refused."""
    try:
        fd = open_private(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise Forbidden(f"{path} is not a regular file: {exc.strerror}", hint="remove it") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Forbidden(f"{path} is not a regular file", hint="remove it")
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def read_small_file(path: Path | str, limit: int, owner: int | None = None) -> bytes | None:
    """The bytes of a regular file of at most `limit` bytes; None for anything else (absent,
    a link, a FIFO, a device, too big, or not `owner`'s: a hard link to another's file).
    Never blocks."""
    try:
        fd = open_private(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        if owner is not None and st.st_uid != owner:
            return None
        data = os.read(fd, limit + 1)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Write-temp (created new, never through a link), then rename into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, path)


def remove_entry(directory: Path, name: str) -> None:
    """Remove `directory/name` (a file, a link or a whole tree) through a descriptor of
    `directory`: nothing below is ever followed out of it."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"not a plain name: {name!r}")
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            st = os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd, ignore_errors=True)
        else:
            os.unlink(name, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
