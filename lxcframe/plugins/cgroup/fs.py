"""Reading and writing cgroupfs files, and emptying and removing cgroup trees.

Errors name the file: a failed write of a cgroup file is otherwise just "Invalid argument".
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterable


def write(path: str, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise OSError(err.errno, f"cannot open {path}: {err.strerror}", path) from None
    try:
        os.write(fd, value.encode())
    except OSError as err:
        raise OSError(err.errno, f"writing {value!r} to {path}: {err.strerror}", path) from None
    finally:
        os.close(fd)


def read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def read_or_none(path: str) -> str | None:
    try:
        return read(path)
    except OSError:
        return None


def keyed(text: str) -> dict[str, str]:
    """``key value`` lines (``cgroup.events``, ``cpu.stat``) as a dict."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        out[key] = value.strip()
    return out


def tree(directory: str) -> list[str]:
    """``directory`` and every cgroup below it, deepest first (the order they can be removed in)."""
    found: list[str] = []
    for parent, dirs, _files in os.walk(directory, topdown=False, onerror=lambda _err: None):
        found.extend(os.path.join(parent, d) for d in dirs)
    if os.path.isdir(directory):
        found.append(directory)
    return found


def pids(directories: Iterable[str]) -> set[int]:
    """Every process in the given cgroups and below them."""
    found: set[int] = set()
    for directory in directories:
        for cgroup in tree(directory):
            text = read_or_none(os.path.join(cgroup, "cgroup.procs"))
            if text:
                found.update(int(word) for word in text.split())
    return found


def signal_all(directories: Iterable[str], signum: int) -> int:
    """Send ``signum`` to every process in the cgroups (never to ourselves); returns how many."""
    me = os.getpid()
    sent = 0
    for pid in pids(directories) - {me}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
            sent += 1
    return sent


def wait_empty(directories: Iterable[str], timeout: float) -> bool:
    wanted = list(directories)
    deadline = time.monotonic() + timeout
    while pids(wanted) - {os.getpid()}:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def empty(directories: Iterable[str], grace: float = 5.0) -> None:
    """Make sure no process is left in the cgroups: wait a little, then SIGKILL what remains."""
    wanted = list(directories)
    if wait_empty(wanted, grace):
        return
    for _attempt in range(50):
        signal_all(wanted, signal.SIGKILL)
        if wait_empty(wanted, 0.2):
            return
    raise OSError(errno.EBUSY, f"processes stay in {', '.join(wanted)} after SIGKILL")


def rmdir(directory: str) -> None:
    """Remove one cgroup; gone already is fine, busy (exiting processes) is retried for a while."""
    for _attempt in range(200):
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY:
                raise OSError(err.errno, f"cannot remove cgroup {directory}: {err.strerror}", directory) from None
            time.sleep(0.01)
    raise OSError(errno.EBUSY, f"cannot remove cgroup {directory}: still busy", directory)


def remove_tree(directory: str) -> None:
    """Remove a cgroup and the cgroups below it (the container may have made some), leaves first."""
    for cgroup in tree(directory):
        rmdir(cgroup)
