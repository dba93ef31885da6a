"""``run``: ``create`` and ``start`` in one command, which (without ``--detach``) stays the container's
parent until init exits, passes on the signals it gets, deletes the container (unless ``--keep``) and
exits with init's status, as runc's ``run`` does.

Init is this process's child from ``create`` on (``create`` forks it and this process does not exit),
so its exit status is this process's to reap; with ``--detach`` this process exits once the container
started and init is reparented to the caller's subreaper, as after ``create``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
from collections.abc import Callable
from typing import Any

from lxcframe.oci.store import OciError, Store

#: What a terminal, a shell or a service manager sends a foreground ``run``: passed on to init.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH)


def run(store: Store, container_id: str, bundle_dir: str, pid_file: str | None, console_socket: str | None,
        *, detach: bool, keep: bool, plugins: Callable[[], Any]) -> int:
    """Create and start the container; without ``detach``, wait for init and return its exit code
    (128 + N when killed by signal N). ``plugins()`` gives the plugins a delete ends it with."""
    from lxcframe import syscalls
    from lxcframe.oci import lifecycle
    from lxcframe.oci.create import create

    state = create(store, container_id, bundle_dir, pid_file, console_socket)
    try:
        pidfd = syscalls.pidfd_open(state.pid)
    except OSError:  # init is gone already: its status is reaped below, what it left released
        pidfd = -1
    previous = {}

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            syscalls.pidfd_send_signal(pidfd, signum)

    try:
        if not detach:
            previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
        try:
            lifecycle.start(store, container_id)
        except BaseException:
            with contextlib.suppress(OciError):
                lifecycle.delete(store, container_id, True, plugins())
            _reap(state.pid)
            raise
        if detach:
            return 0
        gc.freeze()  # what is loaded lives as long as this process: out of the collector's way
        gc.enable()
        code = _reap(state.pid)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pidfd >= 0:
            os.close(pidfd)
    if not keep:
        lifecycle.delete(store, container_id, True, plugins())
    return code


def _reap(pid: int) -> int:
    """Init's exit code, once it exited (signals that interrupt the wait are passed on meanwhile)."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped already (a delete that killed it waited for it)
        return 0
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.waitstatus_to_exitcode(status)
