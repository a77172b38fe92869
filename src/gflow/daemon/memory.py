"""Hand the memory a big request freed back to the system.

Submitting or listing 10,000 jobs allocates tens of MB for a moment (the request body, the
decoded specs, the response). Python frees it, but glibc keeps freed heap pages mapped: it
trims only the top of the heap by itself, and the job records allocated meanwhile sit above
the garbage. So the daemon's RSS stayed ~40 MB above what it holds (SPEC §11: ≤ 80 MB with
10,000 jobs). `malloc_trim(0)` gives back every free page, in about a millisecond.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (musl, macOS): nothing to do
        return None
    return trim


def release_free_memory() -> None:
    """Return the C heap's free pages to the system, where the C library can."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


M_ARENA_MAX = -8  # glibc's mallopt parameter


def one_heap() -> None:
    """One malloc arena for every thread of the daemon. A big submission is decoded in a
    worker thread; glibc would give that thread a heap of its own, and the few objects
    that outlive the request there (the daemon keeps its jobs for as long as they wait)
    pin that heap's pages: 10,000 held jobs took ~70 MB instead of ~60. The daemon's few
    threads do not contend enough for separate arenas to matter."""
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)
    except (AttributeError, OSError):  # not glibc: nothing to do
        pass
