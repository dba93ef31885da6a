"""A fork whose child is our parent's child: clone3(2) with CLONE_PARENT, wrapped as os.fork is.

Why: a server's short-lived worker starts a container, and the container's init must outlive that
worker without being orphaned: its parent (the process ``lxc.monitor.signal.pdeath`` is about, the one
that reaps it) is the long-lived server from birth. Python's ``os.fork`` has no such flag, so this
does what it does around the system call (the interpreter's fork hooks: its import lock, the
``os.register_at_fork`` callbacks, the thread state of the child), with the system call swapped.
"""

from __future__ import annotations

import ctypes
import functools
import threading

from lxcframe.syscalls.libc import _raise, _syscall_numbers

CLONE_PIDFD = 0x00001000
CLONE_PARENT = 0x00008000


class _CloneArgs(ctypes.Structure):
    """``struct clone_args`` (include/uapi/linux/sched.h), the size of its first version plus set_tid
    and cgroup (CLONE_ARGS_SIZE_VER2, 88 bytes)."""

    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
        "set_tid", "set_tid_size", "cgroup")]


@functools.cache
def _api() -> ctypes.PyDLL:
    # The interpreter's own symbols through PyDLL: calls keep the GIL, so the child resumes holding
    # it exactly as the parent held it, and PyOS_AfterFork_Child re-creates it for the child.
    api = ctypes.PyDLL(None, use_errno=True)
    api.syscall.restype = ctypes.c_long
    for name in ("PyOS_BeforeFork", "PyOS_AfterFork_Parent", "PyOS_AfterFork_Child"):
        getattr(api, name).restype = None
        getattr(api, name).argtypes = []
    return api


def ready() -> None:
    """Load what :func:`fork_as_sibling` calls, for a process about to enter a container's mount
    namespace, where the host's files are out of reach."""
    _api()
    _syscall_numbers()


def fork_as_sibling() -> tuple[int, int]:
    """Fork a child of our parent (CLONE_PARENT); ``(pid, pidfd)`` here, ``(0, -1)`` in the child.

    The caller cannot wait for this child (it is its parent's): the pidfd tells when it exited, its
    parent reaps it. Only a single-threaded process may call it, as only such a process may call
    ``os.fork`` safely.
    """
    if threading.active_count() != 1:
        raise RuntimeError("fork_as_sibling: the process has more than one thread")
    api = _api()
    pidfd = ctypes.c_int(-1)
    # No exit_signal of its own (clone3 refuses one with CLONE_PARENT): the child takes ours, SIGCHLD
    # for a process forked as we were.
    args = _CloneArgs(flags=CLONE_PARENT | CLONE_PIDFD, pidfd=ctypes.addressof(pidfd))
    api.PyOS_BeforeFork()
    ctypes.set_errno(0)
    pid = api.syscall(ctypes.c_long(_syscall_numbers()["clone3"]), ctypes.byref(args),
                      ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0, -1
    failure = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        ctypes.set_errno(failure)
        _raise("clone3")
    return int(pid), pidfd.value
