"""The one HTTP client every CLI uses: JSON over the daemon's Unix socket, stdlib only.

HTTP/1.1 by hand on a raw socket (one request per connection, `Connection: close`):
http.client would double a CLI's start-up time (it imports email, ssl and more). The socket
is `_socket`'s, the C core of `socket`, which would add ~5 ms building enums and selectors.
"""

from __future__ import annotations

import _socket
import json
import os

from gflow.core.errors import ERRORS_BY_CODE, Forbidden, GflowError, Unavailable
from gflow.paths import Paths

TYPE_CHECKING = False  # typing only for mypy: importing it costs ~3 ms of a CLI's start
if TYPE_CHECKING:
    from typing import Any

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.,~*@-")


# Characters of an `ids=` query per request: aiohttp refuses a request line over 8 KB, so a
# longer id list (one with few ranges) is asked for in several requests.
MAX_IDS_IN_URL = 4000


def id_chunks(ids: str) -> list[str]:
    """A comma list of ids and ranges split into lists of at most MAX_IDS_IN_URL characters
    (the parts kept in order, so the answers concatenate in id order)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for part in ids.split(","):
        if current and size + len(part) >= MAX_IDS_IN_URL:
            chunks.append(",".join(current))
            current, size = [], 0
        current.append(part)
        size += len(part) + 1
    chunks.append(",".join(current))
    return chunks


class DaemonNotRunning(Unavailable):
    code = "not_running"


def _user_name(uid: int) -> str:
    import pwd  # only on this error path: not on every CLI's start

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _group_name(gid: int) -> str:
    import grp  # only on this error path

    try:
        return f"group {grp.getgrgid(gid).gr_name}"
    except KeyError:
        return f"gid {gid}"


def encode_query(query: dict[str, str]) -> str:
    def quote(text: str) -> str:
        # surrogateescape: an argument that was not UTF-8 ('\udcff') goes as its bytes.
        data = text.encode(errors="surrogateescape")
        return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in data)

    return "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 response read to EOF."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise Unavailable("gflowd sent a malformed HTTP response")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if headers.get(b"transfer-encoding") == b"chunked":
        body = _dechunk(body)
    elif b"content-length" in headers:
        body = body[: int(headers[b"content-length"])]
    return int(parts[1]), body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


class Client:
    def __init__(self, paths: Paths | None = None, timeout: float = 60.0) -> None:
        self.paths = paths or Paths.for_client()
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> Any:
        """Send one request; return the decoded JSON, or raise the daemon's error as ours."""
        target = "/api/v1" + path + (f"?{encode_query(query)}" if query else "")
        payload = json.dumps(body).encode() if body is not None else b""
        request = (
            f"{method} {target} HTTP/1.1\r\nHost: gflowd\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload
        status, data = parse_response(self._exchange(request))
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            raise Unavailable(f"gflowd answered {status} with a non-JSON body") from None
        if status >= 400:
            error = decoded.get("error", {}) if isinstance(decoded, dict) else {}
            cls = ERRORS_BY_CODE.get(error.get("code", ""), GflowError)
            raise cls(error.get("message") or f"gflowd answered {status}", error.get("hint", ""))
        return decoded

    def _exchange(self, request: bytes) -> bytes:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                self._check_owner()
                sock.connect(str(self.paths.socket))
            except PermissionError:
                raise Forbidden(
                    f"the gflowd socket {self.paths.socket} is not open to you: it is for "
                    f"the members of {_group_name(os.stat(self.paths.socket).st_gid)}",
                    hint="ask an admin to add you to that group (then log in again)",
                ) from None
            except (FileNotFoundError, ConnectionRefusedError):
                raise DaemonNotRunning(
                    f"gflowd is not running (no daemon at {self.paths.socket})",
                    hint="ask an admin to start it: gflowd start --system"
                    if self.paths.system
                    else "start it with: gflowd start",
                ) from None
            # The kernel's word for who listens: a socket file can be replaced, this cannot.
            creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
            self._refuse_unless_mine(int.from_bytes(creds[4:8], "little"), "is served by")
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before it read it all (too big, too busy): its answer says why
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
        except OSError as exc:
            raise Unavailable(f"cannot talk to gflowd: {exc}") from None
        finally:
            sock.close()

    def _check_owner(self) -> None:
        """Before a byte is sent (the request carries the whole environment): the socket
        and its directory are the caller's own, or root's for the system daemon. Anything
        else is someone else's daemon."""
        socket_path = self.paths.socket
        self._refuse_unless_mine(os.stat(socket_path.parent).st_uid, "is in a directory of")
        self._refuse_unless_mine(os.lstat(socket_path).st_uid, "belongs to")

    def _refuse_unless_mine(self, uid: int, relation: str) -> None:
        expected = 0 if self.paths.system else os.geteuid()
        if uid != expected:
            whose = "root" if self.paths.system else "you"
            raise Forbidden(
                f"the gflowd socket {self.paths.socket} {relation} {_user_name(uid)}, "
                f"not {whose}: nothing sent",
                hint="check GFLOW_HOME; start your own daemon with: gflowd start",
            )

    # Small conveniences, so CLI modules read as what they do.

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/health")
        return result

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/status")
        return result

    def submit(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """All of them or none. What every job shares (an array's environment, say) is sent
        once, as "defaults": a 10,000-job array is then ~1 MB, not ~30."""
        body: dict[str, Any] = {"jobs": specs}
        if len(specs) > 1:
            first = specs[0]
            shared = {
                k: v
                for k, v in first.items()
                if all(k in s and (s[k] is v or s[k] == v) for s in specs[1:])
            }
            if shared:
                rest = [{k: v for k, v in s.items() if k not in shared} for s in specs]
                body = {"jobs": rest, "defaults": shared}
        result: list[dict[str, Any]] = self.request("POST", "/jobs", body)["jobs"]
        return result

    def list_jobs(self, **query: str) -> list[dict[str, Any]]:
        """`ids` as ranges (`format_id_list`); a long list goes in several requests."""
        result: list[dict[str, Any]] = []
        for clean in _split_ids({k: v for k, v in query.items() if v}):
            result += self.request("GET", "/jobs", query=clean)["jobs"]
        return result

    def list_fields(self, fields: list[str], **query: str) -> list[dict[str, Any]]:
        """Like list_jobs, but each job has only these fields: a big list is several times
        smaller and faster to send and decode."""
        result: list[dict[str, Any]] = []
        for clean in _split_ids({k: v for k, v in query.items() if v}):
            clean["fields"] = ",".join(fields)
            table = self.request("GET", "/jobs", query=clean)
            names = table["fields"]
            result += [dict(zip(names, row, strict=True)) for row in table["rows"]]
        return result

    def show_job(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/jobs/{job_id}")
        return result

    def job_action(self, job_id: int, action: str, body: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/jobs/{job_id}/{action}", body)["job"]
        return result

    def gpus(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/gpus")["gpus"]
        return result

    def shutdown(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/shutdown")
        return result


def _split_ids(query: dict[str, str]) -> list[dict[str, str]]:
    if "ids" not in query:
        return [query]
    return [{**query, "ids": chunk} for chunk in id_chunks(query["ids"])]


class EventStream:
    """`GET /api/v1/events` (Server-Sent Events) on a connection of its own, stdlib only.

    Asked for as HTTP/1.0, so the daemon writes the stream as it is (no chunks) and ends it
    by closing. `next(timeout)` gives the next event as a dict ("id", "event" and the data's
    fields), or None when `timeout` passes with none (keep-alive comments are none). After a
    lost connection `reopen()` resumes after the last id seen (Last-Event-ID)."""

    def __init__(self, client: Client, query: dict[str, str], last_id: int | None = None):
        self.client = client
        self.query = query
        self.last_id = last_id
        self.sock: Any = None
        self.buffer = b""
        self.open()

    def open(self) -> None:
        client = self.client
        target = "/api/v1/events" + (f"?{encode_query(self.query)}" if self.query else "")
        resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id is not None else ""
        request = f"GET {target} HTTP/1.0\r\nHost: gflowd\r\n{resume}\r\n".encode()
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(client.timeout)
        try:
            client._check_owner()
            sock.connect(str(client.paths.socket))
            creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
            client._refuse_unless_mine(int.from_bytes(creds[4:8], "little"), "is served by")
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise DaemonNotRunning(
                f"gflowd is not running (no daemon at {client.paths.socket})",
                hint="start it with: gflowd start",
            ) from None
        except OSError as exc:
            sock.close()
            raise Unavailable(f"cannot talk to gflowd: {exc}") from None
        head, _, rest = data.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1] if head.count(b" ") else b""
        if status != b"200":
            try:
                while chunk := sock.recv(65536):
                    rest += chunk
            except OSError:
                pass
            sock.close()
            try:
                error = json.loads(rest).get("error", {})
            except ValueError:
                error = {}
            cls = ERRORS_BY_CODE.get(error.get("code", ""), GflowError)
            raise cls(error.get("message") or f"gflowd answered {status.decode()}",
                      error.get("hint", ""))  # fmt: skip
        self.sock, self.buffer = sock, rest

    def reopen(self) -> None:
        self.close()
        self.open()

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next event within `timeout` seconds, or None; Unavailable when the
        connection is lost (the daemon stopped)."""
        import time  # only streaming commands need it

        deadline = time.monotonic() + timeout
        while True:
            end = self.buffer.find(b"\n\n")
            if end >= 0:
                block, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
                event = _parse_sse(block)
                if event is None:
                    continue  # a comment (keep-alive)
                if "id" in event:
                    self.last_id = int(event["id"])
                return event
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            except OSError as exc:
                raise Unavailable(f"lost the event stream: {exc}") from None
            if not chunk:
                raise Unavailable("gflowd closed the event stream")
            self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _parse_sse(block: bytes) -> dict[str, Any] | None:
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in block.decode(errors="replace").split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        else:
            fields[name] = value
    if not fields and not data:
        return None
    event: dict[str, Any] = {}
    if data:
        try:
            decoded = json.loads("\n".join(data))
        except ValueError:
            decoded = {"data": "\n".join(data)}
        if isinstance(decoded, dict):
            event.update(decoded)
    event["event"] = fields.get("event", event.get("kind", "message"))
    if "id" in fields and fields["id"].isdigit():
        event["id"] = int(fields["id"])
    return event
