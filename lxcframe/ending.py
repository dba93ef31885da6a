"""Waiting for a container's end, as ``stop`` does: for its init, and for whoever ends it."""

from __future__ import annotations

import select
import time

from lxcframe import state as st

#: Seconds the end of an adopted container (hooks, cleanup) may take once init exited.
END_TIMEOUT = 30.0


def wait_readable(fd: int | None, timeout: float) -> bool:
    """A pidfd turns readable when its process exits."""
    if fd is None:
        return True
    readable, _, _ = select.select([fd], [], [], max(timeout, 0))
    return bool(readable)


def wait_ended(current: st.ContainerState, monitor: int | None, init: int | None, timeout: float) -> bool:
    """Wait until init exited (within ``timeout``) and the container's end is done; True if init did.

    A monitor of its own exits once the end is done; an adopting server stays, and the end is done
    when the worker it forked for it let go of the container's lock.
    """
    if not current.adopted or monitor is None:
        return wait_readable(monitor if monitor is not None else init, timeout)
    if not wait_readable(init, timeout):
        return False
    deadline = time.monotonic() + END_TIMEOUT
    while st.monitor_alive(current.lxcpath, current.name) and time.monotonic() < deadline:
        time.sleep(0.002)
    return True
