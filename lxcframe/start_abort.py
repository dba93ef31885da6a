"""SIGTERM aborts a start that is still in the monitor's hands.

``stop`` of a STARTING container (a pre-start hook that hangs, a child stuck between barriers) must
act, as ``lxc-stop -k`` does, without leaving half a container behind. Killing the monitor outright
would skip its undo stack, so the stopper sends SIGTERM instead: while the start runs, SIGTERM
raises :class:`StartAborted` in the monitor, which then unwinds exactly as after a failed stage
(a hook's subprocess is killed, the child is killed and reaped, the undo stack runs) and reports the
failure to whoever asked for the start. Once init runs, SIGTERM is the monitor's to forward to init.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StartAborted(Exception):
    """Raised in the monitor by SIGTERM while its start is not finished."""


def _abort(_signum: int, _frame: Any) -> None:
    # Once: the unwinding this starts must not be cut short by a second SIGTERM.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise StartAborted("start aborted by SIGTERM (the container was stopped while starting)")


@contextmanager
def armed() -> Iterator[None]:
    """SIGTERM aborts the start inside this block; the previous handler is back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # Python runs handlers in the main thread only; such a monitor is stopped as before
        return
    previous = signal.signal(signal.SIGTERM, _abort)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def done() -> None:
    """The start finished (well or not): from here SIGTERM no longer aborts it.

    Held back until the monitor installs its forwarding to init (:func:`release`), so that a SIGTERM
    racing with the end of the start neither interrupts the unwinding nor kills the monitor without
    its teardown, nor is lost: a stop sent as soon as RUNNING is recorded reaches init.
    """
    global _held
    if signal.getsignal(signal.SIGTERM) is _abort:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}):
            _held = True


def release() -> None:
    """Deliver a SIGTERM held back since :func:`done` to the handler now in place (the forwarding to
    init; or, after a failed start, the ignoring one, which drops it)."""
    global _held
    if _held:
        _held = False
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


#: Whether :func:`done` blocked SIGTERM (a caller that had it blocked keeps it so).
_held = False
