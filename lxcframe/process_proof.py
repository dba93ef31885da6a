"""Proving that a pid read from ``state.json`` is that container's monitor or init before signalling it.

``state.json`` is only a file: stale after a crash, or written by someone who could write the run
directory. A pid and a start time taken from it prove nothing (both are readable for any process
in ``/proc``), so before root signals one of them it must be shown to belong to the container:

* the **monitor** has this container's ``monitor.lock`` open (same device and inode, checked in
  ``/proc/PID/fd``): only the process that took the lock, or one it forked before executing
  nothing, has that file open;
* the **init** is pid 1 of a pid namespace that is not the caller's (every start makes one), in
  the pid namespace recorded at the start when there is one, and, while the monitor lives, a child
  or grandchild of that proven monitor (with a user namespace the monitor's child forks pid 1).

Each check starts from a pidfd opened *first*: the ``/proc`` facts are read after, and the pidfd is
then asked whether its process still lives. If it does, the pid was never recycled in between, so
the facts read were that process's, and the pidfd that is returned can only ever signal it.
"""

from __future__ import annotations

import contextlib
import os
import select
from collections.abc import Callable

from lxcframe import syscalls


def status_fields(pid: int) -> dict[str, str]:
    """The ``/proc/PID/status`` fields (empty when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as handle:
            return {key: value.strip() for key, _, value in (line.partition(":") for line in handle)}
    except OSError:
        return {}


def start_time(pid: int) -> int | None:
    """Start time in clock ticks of a live ``pid`` (``None`` when gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def pidns_inode(pid: int | str) -> int | None:
    """The inode of the pid namespace ``pid`` (or ``"self"``) lives in; ``None`` when unreadable."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def holds_file(pid: int, path: str) -> bool:
    """True when ``pid`` has the file now at ``path`` open (compared by device and inode)."""
    try:
        wanted = os.stat(path)
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for name in names:
        try:
            found = os.stat(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (wanted.st_dev, wanted.st_ino):
            return True
    return False


def _parent(pid: int) -> int | None:
    value = status_fields(pid).get("PPid")
    return int(value) if value and value.isdigit() else None


def is_namespace_init(pid: int, recorded_pidns: int | None) -> bool:
    """``pid`` is pid 1 of a pid namespace other than ours (and the one recorded, if any)."""
    nspids = status_fields(pid).get("NSpid", "").split()
    if len(nspids) < 2 or nspids[-1] != "1":
        return False
    inode = pidns_inode(pid)
    if inode is None or inode == pidns_inode("self"):
        return False
    return recorded_pidns is None or inode == recorded_pidns


def descends_from(pid: int, ancestor: int, depth: int = 2) -> bool:
    """``ancestor`` is the parent (or, up to ``depth``, a further ancestor) of ``pid``."""
    for _ in range(depth):
        parent = _parent(pid)
        if parent is None or parent <= 0:
            return False
        if parent == ancestor:
            return True
        pid = parent
    return False


def exits_soon(pid: int, timeout: float = 0.25) -> bool:
    """True when ``pid`` ends within ``timeout``: a pid namespace's init that is exiting (waiting for
    the rest of its namespace to die) no longer shows its namespaces, and is no stranger."""
    try:
        fd = syscalls.pidfd_open(pid)
    except OSError:
        return True
    try:
        return not is_alive(fd, timeout)
    finally:
        os.close(fd)


def is_alive(pidfd: int, timeout: float = 0) -> bool:
    """A pidfd turns readable when its process exits; ``timeout``: how long it may take to."""
    readable, _, _ = select.select([pidfd], [], [], timeout)
    return not readable


def _open_checked(pid: int | None, start: int | None, proof: Callable[[int], bool]) -> int | None:
    """A pidfd of ``pid`` if it started at ``start`` and ``proof(pid)`` holds, checked race-free."""
    if not pid or pid <= 0 or start is None:
        return None
    try:
        fd = syscalls.pidfd_open(pid)
    except OSError:  # ProcessLookupError (gone) included
        return None
    try:
        if start_time(pid) == start and proof(pid) and is_alive(fd):
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def open_monitor(pid: int | None, start: int | None, monitor_lock: str) -> int | None:
    """A pidfd of the monitor named by the state, or ``None`` when that process is not it."""
    return _open_checked(pid, start, lambda candidate: holds_file(candidate, monitor_lock))


def open_init(pid: int | None, start: int | None, monitor_pid: int | None,
              recorded_pidns: int | None) -> int | None:
    """A pidfd of the container's init, or ``None`` when that process is not it.

    ``monitor_pid`` is a monitor already proven (its pidfd is held by the caller), or ``None`` when
    the monitor died (then only the namespace proofs remain).
    """
    def proof(candidate: int) -> bool:
        if not is_namespace_init(candidate, recorded_pidns):
            return False
        return monitor_pid is None or descends_from(candidate, monitor_pid)

    return _open_checked(pid, start, proof)


def close(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
