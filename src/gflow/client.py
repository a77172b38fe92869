"""The one HTTP client every CLI uses: JSON over the daemon's Unix socket, stdlib only."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlencode

from gflow.config import Paths
from gflow.core.errors import ERRORS_BY_CODE, GflowError, Unavailable


class DaemonNotRunning(Unavailable):
    code = "not_running"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Client:
    def __init__(self, paths: Paths | None = None, timeout: float = 60.0) -> None:
        self.paths = paths or Paths.from_env()
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> Any:
        """Send one request; return the decoded JSON, or raise the daemon's error as ours."""
        url = "/api/v1" + path + (f"?{urlencode(query)}" if query else "")
        conn = _UnixConnection(str(self.paths.socket), self.timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            conn.request(method, url, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (FileNotFoundError, ConnectionRefusedError):
            raise DaemonNotRunning(
                f"gflowd is not running (no daemon at {self.paths.socket})",
                hint="start it with: gflowd start",
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise Unavailable(f"cannot talk to gflowd: {exc}") from None
        finally:
            conn.close()
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            raise Unavailable(f"gflowd answered {response.status} with a non-JSON body") from None
        if response.status >= 400:
            error = (decoded or {}).get("error", {}) if isinstance(decoded, dict) else {}
            cls = ERRORS_BY_CODE.get(error.get("code", ""), GflowError)
            raise cls(error.get("message") or f"gflowd answered {response.status}",
                      error.get("hint", ""))  # fmt: skip
        return decoded

    # Small conveniences, so CLI modules read as what they do.

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/health")
        return result

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/status")
        return result

    def submit(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("POST", "/jobs", {"jobs": specs})["jobs"]
        return result

    def list_jobs(self, **query: str) -> list[dict[str, Any]]:
        clean = {k: v for k, v in query.items() if v}
        result: list[dict[str, Any]] = self.request("GET", "/jobs", query=clean)["jobs"]
        return result

    def show_job(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/jobs/{job_id}")
        return result

    def job_action(self, job_id: int, action: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/jobs/{job_id}/{action}")["job"]
        return result

    def shutdown(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/shutdown")
        return result
