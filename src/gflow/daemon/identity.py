"""Who is calling, and what they may do: identity in one place.

The caller is who the kernel says is on the other end of the Unix socket (SO_PEERCRED for
uid and gid, SO_PEERGROUPS for the supplementary groups); `$USER`, and anything a request
says about identity, is never read. One function, `authorize`, answers "may this caller do
this to that job"; `require_admin` guards what changes the daemon itself (gctl).

Admins are root, whoever the config names (`[daemon] admins = ["alice", "@gpu-admins"]`,
`@` for a group's members), and in personal mode the daemon's owner. In personal mode
only the owner (and root) can reach the 0600 socket, so every job is theirs.
"""

from __future__ import annotations

import grp
import pwd
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from gflow.core.errors import Forbidden
from gflow.core.model import Job

# Python 3.11 names neither; Linux's values (asm-generic/socket.h).
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)
_GROUPS_BUFFER = 1024  # the most Python's getsockopt takes: 256 groups


@dataclass(frozen=True)
class Caller:
    """Who sent a request, from the socket's peer credentials."""

    uid: int
    user: str
    gid: int = -1
    groups: tuple[int, ...] = ()
    admin: bool = False


@dataclass(frozen=True)
class AccessPolicy:
    """Who the admins are: root, the daemon's owner in personal mode, and the config's."""

    owner_uid: int  # the daemon's own uid
    system: bool = False
    admin_users: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, owner_uid: int, system: bool, admins: Iterable[str]) -> AccessPolicy:
        names = tuple(admins)
        return cls(
            owner_uid=owner_uid,
            system=system,
            admin_users=frozenset(n for n in names if not n.startswith("@")),
            admin_groups=frozenset(n[1:] for n in names if n.startswith("@")),
        )

    def is_admin(self, uid: int, user: str, gid: int, groups: Iterable[int]) -> bool:
        if uid == 0 or (not self.system and uid == self.owner_uid):
            return True
        if user in self.admin_users:
            return True
        return bool(self.admin_groups) and bool(
            self.admin_groups & {_group_name(g) for g in {gid, *groups}}
        )

    def caller(self, uid: int, gid: int, groups: tuple[int, ...]) -> Caller:
        user = _user_name(uid)
        return Caller(uid, user, gid, groups, self.is_admin(uid, user, gid, groups))


def caller_from_socket(sock: socket.socket, policy: AccessPolicy) -> Caller:
    """The kernel's word on who is on the other end of this Unix socket."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, gid = struct.unpack("3i", creds)
    return policy.caller(uid, gid, peer_groups(sock))


def peer_groups(sock: socket.socket) -> tuple[int, ...]:
    """The peer's supplementary groups when it connected (SO_PEERGROUPS, Linux 4.13+);
    () where the kernel cannot say (or past 256 groups): then only named admins count."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, _GROUPS_BUFFER)
    except OSError:
        return ()
    count = len(raw) // 4
    return tuple(struct.unpack(f"{count}I", raw[: count * 4]))


def authorize(caller: Caller, action: str, job: Job) -> None:
    """May `caller` do `action` (cancel, hold, release, update, redo, read the log of,
    attach to) to `job`? Its owner and admins may; anyone else is refused in one line."""
    if caller.uid == job.uid or caller.admin:
        return
    raise Forbidden(f"job {job.id} belongs to {job.user}; you cannot {action} it")


def authorize_owner(caller: Caller, action: str, job: Job) -> None:
    """Only the job's own user, admins included (attach: an admin who attached as root
    would run commands in the user's session as root)."""
    if caller.uid != job.uid:
        raise Forbidden(f"job {job.id} belongs to {job.user}; you cannot {action} it")


def authorize_read(caller: Caller, job: Job) -> None:
    """Logs are the job owner's (and admins'): others see the queue, not the output."""
    authorize(caller, "read the log of", job)


def require_admin(caller: Caller, what: str) -> None:
    if not caller.admin:
        raise Forbidden(f"only an admin may {what}", hint="admins: root and [daemon] admins")


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
