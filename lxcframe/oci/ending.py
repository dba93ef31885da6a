"""``delete``: what a monitor does once init exited, run by the command that deletes the container.

``create`` left no process behind, so the end of the container runs here from what outlives a
process, as a server's end worker does (:mod:`lxcframe.after_stop`): the start request ``create``
saved (``start.json`` in the container's directory: the plan and the plugin selection it was built
with) and lxcframe's state records of what the start made on the host (cgroups, network, ...). The
``stop`` stage, each plugin's ``lxcframe_cleanup`` and the ``post-stop`` stage run; then the
container's directory goes.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal

from lxcframe import syscalls, transfer
from lxcframe.oci.store import OciError, OciState, Store

START_FILE = "start.json"


def save_request(directory: str, request: object) -> None:
    path = os.path.join(directory, START_FILE)
    with open(path, "wb") as handle:
        handle.write(transfer.dumps(request))


def end_container(store: Store, state: OciState) -> None:
    """Release what the container's start made; its directory removed even when a step failed
    (logged), as runc's delete removes its state whatever its cgroup removal said."""
    from lxcframe import after_stop, start_request

    directory = store.directory(state.id)
    try:
        with open(os.path.join(directory, START_FILE), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        data = None
    try:
        if data is not None:
            request, plugins = start_request.decode(transfer.parse_json(data))
            after_stop.end_container(request, plugins, None, {})
    finally:
        store.remove(state.id)


def kill_and_wait(pid: int, pid_start: int, timeout: float = 10.0) -> None:
    """SIGKILL init (and so its pid namespace) and wait until it is gone: reaped by its parent, the
    caller's subreaper, which may be slow to do so; gone from its namespace's view is enough."""
    from lxcframe.process_proof import start_time

    try:
        pidfd = syscalls.pidfd_open(pid)
    except OSError:
        return
    try:
        if start_time(pid) != pid_start:
            return
        with contextlib.suppress(ProcessLookupError):
            syscalls.pidfd_send_signal(pidfd, signal.SIGKILL)
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if not ready:
            raise OciError(f"container init {pid} did not die within {timeout:g} s of SIGKILL")
    finally:
        os.close(pidfd)
