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
from typing import Any

from lxcframe import syscalls, transfer
from lxcframe.oci.store import OciError, Store

START_FILE = "start.json"


def save_request(directory: str, request: object) -> None:
    path = os.path.join(directory, START_FILE)
    with open(path, "wb") as handle:
        handle.write(transfer.dumps(request))


def end_container(store: Store, container_id: str, plugins: Any = None) -> None:
    """Release what the container's start made; its directory removed even when a step failed
    (logged), as runc's delete removes its state whatever its cgroup removal said. ``plugins``, the
    command's, end it when the start was made with the same selection (not loaded a second time)."""
    from lxcframe import after_stop, start_request

    directory = store.directory(container_id)
    try:
        with open(os.path.join(directory, START_FILE), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        data = None
    load = start_request.reusing(plugins) if plugins is not None else start_request.PluginSelection.load
    try:
        if data is not None:
            request, loaded = start_request.decode(transfer.parse_json(data), load)
            after_stop.end_container(request, loaded, None, {})
    finally:
        store.remove(container_id)


def end_unfinished(store: Store, container_id: str, plugins: Any = None) -> None:
    """``delete --force`` of a container whose ``create`` did not finish (killed, or still running): the
    ``create`` process and the init lxcframe's record names are killed, then what the start made so far
    (on record from its first step) is released as for any container."""
    from lxcframe import state as st

    try:
        recorded = st.read_state(store.root, container_id)
    except Exception:  # a record gone bad is not acted on: the directory still goes
        recorded = None
    if recorded is not None:
        for pid, start in ((recorded.monitor_pid, recorded.monitor_start), (recorded.init_pid, recorded.init_start)):
            if pid and start and pid != os.getpid():
                kill_and_wait(pid, start)
    end_container(store, container_id, plugins)


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
