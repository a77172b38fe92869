"""A malformed HTTP request (a request line over aiohttp's 8 KB, a broken header) is the
client's fault: one warning line in gflowd.log, not an ERROR with a traceback."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

MAX_SHOWN = 200  # characters of the parser's message (it quotes the request)


class OneLineBadRequests(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            text = " ".join(str(exc).split())
            record.msg = "refused a malformed HTTP request: %s"
            record.args = (text[:MAX_SHOWN] + ("…" if len(text) > MAX_SHOWN else ""),)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_bad_requests() -> None:
    """Install the filter on aiohttp's server logger (once)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, OneLineBadRequests) for f in logger.filters):
        logger.addFilter(OneLineBadRequests())
