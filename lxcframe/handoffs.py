"""Quick GIL hand-offs while a caller with busy threads waits on the server.

Every blocking system call gives the GIL up; getting it back when other threads are busy in Python
waits for the holder's switch interval (5 ms by default), and the GIL then goes to whichever waiting
thread the OS wakes first: with 8 busy threads each of the half-dozen calls of an attach by name cost
15–120 ms, and the attach 0.2–0.5 s against ~17 ms from a one-thread caller. For the few
milliseconds of such an exchange the interval is lowered, so that a thread whose call returned gets
the GIL back within a fraction of a millisecond; the other threads keep running meanwhile (they are
switched more often, not stopped). The caller's own interval comes back when the last exchange in
flight ends.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

#: The interval while an exchange is in flight: ~50 switches per millisecond of another thread's
#: Python at most, against 0.2 per millisecond by default.
QUICK_INTERVAL = 0.00002

_LOCK = threading.Lock()
#: [exchanges in flight, the interval to restore when the last one ends]
_IN_FLIGHT: list[float] = [0, 0.0]


def _enter() -> None:
    with _LOCK:
        if _IN_FLIGHT[0] == 0:
            _IN_FLIGHT[1] = sys.getswitchinterval()
            sys.setswitchinterval(min(QUICK_INTERVAL, _IN_FLIGHT[1]))
        _IN_FLIGHT[0] += 1


def _leave() -> None:
    with _LOCK:
        _IN_FLIGHT[0] -= 1
        if _IN_FLIGHT[0] == 0:
            sys.setswitchinterval(_IN_FLIGHT[1])


@contextlib.contextmanager
def quick_handoffs() -> Iterator[None]:
    """Lower the switch interval for the block (nested and concurrent blocks share one lowering)."""
    _enter()
    try:
        yield
    finally:
        _leave()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Inside :func:`quick_handoffs`: the block (a long wait) counts as no exchange in flight."""
    _leave()
    try:
        yield
    finally:
        _enter()
