"""The commands on a created container: ``start``, ``state``, ``kill``, ``delete``, ``pause``/``resume``,
``ps`` and ``update``, with runc's exit codes and idempotence.

No lxcframe process runs beside a container of this mode: each command reads the container's state
(:mod:`lxcframe.oci.store`), proves its init by pid and start time, and acts on the host itself (the
exec fifo, signals, the cgroup plugin's hooks on lxcframe's state records).
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from lxcframe import state as st
from lxcframe.oci.store import CREATED, PAUSED, RUNNING, STOPPED, OciError, OciState, Store
from lxcframe.process_proof import start_time
from lxcframe.stage_runner import call_hook

#: How long ``start`` waits for init to take the fifo's byte (it is already blocked in its open).
START_TIMEOUT = 10.0


def init_alive(state: OciState) -> bool:
    return start_time(state.pid) == state.pid_start


def lxc_state(store: Store, state: OciState) -> st.ContainerState:
    """lxcframe's record of the container (its cgroups, ...), which the plugins' hooks act on."""
    recorded = st.read_state(store.root, state.id)
    if recorded is None:
        raise OciError(f"container {state.id}: lxcframe's state of it is missing")
    return recorded


def status(store: Store, state: OciState, plugins: Any | None = None) -> str:
    if not init_alive(state):
        return STOPPED
    if os.path.exists(store.fifo(state.id)):
        return CREATED
    if plugins is not None and call_hook(plugins, "lxcframe_is_frozen", firstresult=True,
                                         state=lxc_state(store, state)) == [True]:
        return PAUSED
    return RUNNING


def state_document(store: Store, container_id: str, plugins: Any) -> dict[str, Any]:
    state = store.read(container_id)
    return state.document(status(store, state, plugins))


def start(store: Store, container_id: str) -> None:
    """Let init past the exec fifo: open it for reading and take init's answer; then poststart."""
    from lxcframe.oci import oci_hooks

    state = store.read(container_id)
    fifo = store.fifo(container_id)
    if not os.path.exists(fifo):
        current = status(store, state)
        raise OciError(f"cannot start a container that has {current}" if current == STOPPED
                       else "cannot start an already running container")
    if not init_alive(state):
        raise OciError("cannot start a container that has stopped")
    # Non-blocking: the open does not wait for a writer; init, blocked in its open for writing, goes on.
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        # Init answers once its startContainer hooks ran.
        oci_hooks.await_init(fd, container_id, lambda: init_alive(state), START_TIMEOUT)
    finally:
        os.close(fd)
    os.unlink(fifo)
    oci_hooks.after_start(store.directory(container_id), state)


def parse_signal(text: str) -> int:
    """``9``, ``KILL``, ``SIGKILL``, ``sigkill``: as runc and kill(1) take them."""
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        found = getattr(signal.Signals, name, None) if name.isidentifier() else None
        if isinstance(found, signal.Signals):
            return int(found)
    raise OciError(f"invalid signal: {text}")


def kill(store: Store, container_id: str, signum: int, all_processes: bool, plugins: Any) -> None:
    state = store.read(container_id)
    if not init_alive(state):
        raise OciError("container not running")
    if all_processes and call_hook(plugins, "lxcframe_kill_all", firstresult=True,
                                   state=lxc_state(store, state), signal=signum):
        return
    os.kill(state.pid, signum)


def delete(store: Store, container_id: str, force: bool, plugins: Any) -> None:
    from lxcframe.oci import oci_hooks
    from lxcframe.oci.ending import end_container, end_unfinished, kill_and_wait

    if not store.exists(container_id):
        if force:
            return
        raise OciError(f"container {container_id} does not exist")
    try:
        state = store.read(container_id)
    except OciError:
        if not force:
            raise
        end_unfinished(store, container_id, plugins)  # a create that never finished
        return
    current = status(store, state, plugins)
    if current != STOPPED:
        if not force and current != CREATED:
            raise OciError(f"cannot delete container {container_id} that is not stopped: {current}")
        if current == PAUSED:
            call_hook(plugins, "lxcframe_freeze", firstresult=True, state=lxc_state(store, state), frozen=False)
        kill_and_wait(state.pid, state.pid_start)
    hooks = oci_hooks.load(store.directory(container_id))
    end_container(store, container_id, plugins)
    oci_hooks.after_delete(hooks, state)


def pause(store: Store, container_id: str, plugins: Any, frozen: bool) -> None:
    state = store.read(container_id)
    current = status(store, state, plugins)
    if frozen and current != RUNNING:
        raise OciError(f"container not running: {current}")
    if not frozen and current != PAUSED:
        raise OciError(f"container not paused: {current}")
    if not call_hook(plugins, "lxcframe_freeze", firstresult=True, state=lxc_state(store, state), frozen=frozen):
        raise OciError(f"container {container_id}: no freezer for its cgroup")


def processes(store: Store, container_id: str, plugins: Any) -> list[int]:
    """The host pids in the container's cgroup (``ps --format json``)."""
    state = store.read(container_id)
    if not init_alive(state):
        return []
    found = call_hook(plugins, "lxcframe_cgroup_item", firstresult=True, state=lxc_state(store, state),
                      key="cgroup.procs", value=None)
    if not found:
        return [state.pid]
    return sorted(int(line) for line in found[0].split())


#: LinuxResources (runtime-spec config-linux.md) -> the cgroup v1 file and how the value is written.
_RESOURCES = (
    (("cpu", "shares"), "cpu.shares"),
    (("cpu", "quota"), "cpu.cfs_quota_us"),
    (("cpu", "period"), "cpu.cfs_period_us"),
    (("cpu", "cpus"), "cpuset.cpus"),
    (("cpu", "mems"), "cpuset.mems"),
    (("memory", "limit"), "memory.limit_in_bytes"),
    (("memory", "reservation"), "memory.soft_limit_in_bytes"),
    (("pids", "limit"), "pids.max"),
)


def update(store: Store, container_id: str, resources_path: str, plugins: Any) -> None:
    state = store.read(container_id)
    if not init_alive(state):
        raise OciError("container not running")
    try:
        with open(resources_path, encoding="utf-8") as handle:
            resources = json.load(handle)
    except (OSError, ValueError) as err:
        raise OciError(f"{resources_path}: {err}") from None
    if not isinstance(resources, dict):
        raise OciError(f"{resources_path}: not a LinuxResources object")
    recorded = lxc_state(store, state)
    for (section, field), key in _RESOURCES:
        value = (resources.get(section) or {}).get(field)
        if value is None or value == "" or (field == "quota" and value == 0):
            continue
        if key == "pids.max" and int(value) <= 0:
            value = "max"
        elif key == "memory.limit_in_bytes" and int(value) < 0:
            value = -1
        call_hook(plugins, "lxcframe_cgroup_item", firstresult=True, state=recorded, key=key, value=str(value))
