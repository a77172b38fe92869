"""The few errors a user can act on; the daemon maps them to HTTP, the CLI to exit codes."""

from __future__ import annotations


class GflowError(Exception):
    """Base of every error the user should see as one line (plus an optional hint)."""

    code = "error"
    http_status = 500
    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InvalidInput(GflowError):
    """A malformed value: a usage error (exit 2, HTTP 400)."""

    code = "invalid_input"
    http_status = 400
    exit_code = 2


class NotFound(GflowError):
    """An id that names no job."""

    code = "not_found"
    http_status = 404


class InvalidState(GflowError):
    """The job's state forbids the action (cancel a Finished job, hold a Running one)."""

    code = "invalid_state"
    http_status = 409


class Forbidden(GflowError):
    """The caller may not act on this job."""

    code = "forbidden"
    http_status = 403


class Unavailable(GflowError):
    """The daemon cannot take the change right now (no daemon, disk full)."""

    code = "unavailable"
    http_status = 503


ERRORS_BY_CODE: dict[str, type[GflowError]] = {
    cls.code: cls
    for cls in (GflowError, InvalidInput, NotFound, InvalidState, Forbidden, Unavailable)
}
