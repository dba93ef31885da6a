"""What every process does last before it executes something inside a container.

A runtime process carries the host with it: descriptors of lock files, sockets, the run directory
and the caller's pipes; the signal dispositions Python set (SIGPIPE and SIGXFSZ ignored survive an
exec); a working directory that may lie outside the container's root. Each of these is a way out
of the container for whatever runs next, so init, the command of ``execute``, and attached
commands go through :func:`close_descriptors`, :func:`default_signals` and :func:`enter_cwd`.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterable

from lxcframe import syscalls

_NEVER_CAUGHT = (signal.SIGKILL, signal.SIGSTOP)
_FD_LIMIT = 0x7FFFFFFF


def close_descriptors(keep: Iterable[int] = ()) -> None:
    """Close every descriptor above stdio except ``keep`` (close_range(2) over the gaps).

    Only for a process that executes next: Python objects still holding a closed number must not
    be used again.
    """
    low = 3
    for fd in sorted({fd for fd in keep if fd >= 3}):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _FD_LIMIT)


def default_signals() -> None:
    """Every signal back to its default action and none blocked, as a fresh process expects."""
    valid = signal.valid_signals()
    for signum in range(1, signal.NSIG):
        if signum in _NEVER_CAUGHT:
            continue
        if signum not in valid:
            # The C library's own (32 and 33 with glibc): Python cannot name them, and a process
            # started by posix_spawn has them ignored, which would survive the exec that follows.
            syscalls.unignore_signal(signum)
            continue
        try:
            signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):
            syscalls.unignore_signal(signum)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def interpreter_signals() -> None:
    """The dispositions a fresh interpreter started by a clean parent has: every signal default and
    none blocked, except SIGINT raising KeyboardInterrupt and SIGPIPE and SIGXFSZ ignored. Python
    leaves a signal its parent ignored ignored (a background job's SIGINT and SIGQUIT), which a
    long-lived process serving other callers must not keep from whichever caller started it."""
    default_signals()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


class OutsideRoot(Exception):
    """The working directory asked for resolves outside the container's root."""


def enter_cwd(path: str) -> None:
    """chdir to ``path`` and prove the result lies inside our root (runc's CVE-2024-21626 check).

    A directory reached through a descriptor (``/proc/self/fd/N``) or a mount outside the root has
    no path from our root: the kernel's getcwd then answers "(unreachable)…" or ENOENT.
    """
    os.chdir(path)
    try:
        where = os.getcwd()
    except OSError:
        where = ""
    if not where.startswith("/"):
        raise OutsideRoot(f"working directory {path} is outside the container's root")


def resolve_command(command: str, env: dict[str, str]) -> str | None:
    """Where ``command`` is found by the exec that follows (PATH of ``env``), or None."""
    if "/" in command:
        return command if os.access(command, os.X_OK) and not os.path.isdir(command) else None
    return shutil.which(command, path=env.get("PATH", os.defpath))
