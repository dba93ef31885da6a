"""One container started by many callers at once: threads of one process and separate processes.

Commands on one container serialise on its command lock (``state.acquire_command_lock``): the first
start runs, each later one waits for the lock and then finds the container running. So exactly one
start wins, every other gets ``NAME: already running``, nothing hangs, and the host runs exactly one
monitor and one init for the container (checked from /proc, not from the state file).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time

import pytest

from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import ContainerError

from .conftest import run_cli

pytestmark = pytest.mark.container

CALLERS = 4
PROCESSES = 3
#: A loser waits for the lock while the winner starts (well under a second here), then fails at once.
JOIN_TIMEOUT = 60.0


def _join(threads: list[threading.Thread], timeout: float) -> None:
    """Join every thread within one deadline (a hang costs ``timeout`` once, not once per thread)."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))


def _holders(path: str) -> set[int]:
    """Processes with a descriptor open on the file at ``path`` (a monitor keeps its monitor.lock open)."""
    try:
        wanted = os.stat(path)
    except FileNotFoundError:
        return set()
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    info = os.stat(f"/proc/{pid}/fd/{fd}")
                    if (info.st_dev, info.st_ino) == (wanted.st_dev, wanted.st_ino):
                        found.add(int(pid))
                        break
    return found


def _children(pid: int) -> list[int]:
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError), open(f"/proc/{name}/stat", "rb") as handle:
            data = handle.read()
            if int(data[data.rindex(b")") + 2 :].split()[1]) == pid:
                found.append(int(name))
    return found


def _nspid_or_none(pid: int) -> list[int]:
    try:
        return _nspid(pid)
    except (OSError, StopIteration):
        return []  # gone meanwhile (a worker leaving)


def _nspid(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as handle:
        line = next(line for line in handle if line.startswith("NSpid:"))
    return [int(word) for word in line.split()[1:]]


def _assert_one_monitor_and_one_init(container: Container, init: int) -> None:
    """Exactly one process holds the container's monitor lock, and its only child is ``init``: pid 1
    of a pid namespace of its own."""
    lock = os.path.join(st.runtime_dir(container.lxcpath, container.name), "monitor.lock")
    # The server that adopts the container holds the lock; its start worker held it too until it left.
    deadline = time.monotonic() + 10
    while len(monitors := _holders(lock)) != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(monitors) == 1, f"monitors of {container.name}: {sorted(monitors)}"
    monitor = monitors.pop()
    assert monitor == container.current_state().monitor_pid
    inits = [child for child in _children(monitor) if _nspid_or_none(child)[1:] == [1]]
    assert inits == [init], f"children of the monitor: {_children(monitor)}, init {init}"
    assert _nspid(init)[-1] == 1 and len(_nspid(init)) == 2


def _assert_nothing_runs(container: Container, init: int) -> None:
    lock = os.path.join(st.runtime_dir(container.lxcpath, container.name), "monitor.lock")
    assert _holders(lock) == set()
    assert st.process_start_time(init) is None


def test_threads_starting_one_container_at_once_start_it_once(make_container):
    container = make_container("race1")
    barrier = threading.Barrier(CALLERS)
    outcomes: list[int | BaseException] = []

    def start() -> None:
        barrier.wait(10)
        try:
            outcomes.append(container.start())
        except BaseException as err:
            outcomes.append(err)

    threads = [threading.Thread(target=start, daemon=True) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    _join(threads, JOIN_TIMEOUT)
    assert not [t for t in threads if t.is_alive()], f"starts still hanging; finished: {outcomes}"
    pids = [o for o in outcomes if isinstance(o, int)]
    errors = [o for o in outcomes if not isinstance(o, int)]
    assert len(pids) == 1, outcomes
    assert [(type(e), str(e)) for e in errors] == [(ContainerError, "race1: already running")] * (CALLERS - 1)
    init = pids[0]
    assert container.state == st.RUNNING and container.init_pid == init
    _assert_one_monitor_and_one_init(container, init)
    container.stop(kill=True)
    assert container.state == st.STOPPED
    _assert_nothing_runs(container, init)
    container.destroy()
    assert not container.defined


def test_processes_starting_one_container_at_once_start_it_once(make_container, lxcpath):
    container = make_container("race2")
    env = dict(os.environ)
    results: list[object] = []

    def start() -> None:
        try:
            results.append(run_cli("-P", lxcpath, "start", "race2", env=env, timeout=JOIN_TIMEOUT))
        except BaseException as err:  # a timeout shows here as the hang it is
            results.append(err)

    threads = [threading.Thread(target=start, daemon=True) for _ in range(PROCESSES)]
    for thread in threads:
        thread.start()
    _join(threads, JOIN_TIMEOUT + 10)
    assert not [t for t in threads if t.is_alive()] and len(results) == PROCESSES, results
    finished = [r for r in results if isinstance(r, subprocess.CompletedProcess)]
    assert len(finished) == PROCESSES, f"starts that hung or failed: {results}"
    codes = sorted((r.returncode, r.stderr) for r in finished)
    assert codes == [(0, "")] + [(1, "lxcframe: error: race2: already running\n")] * (PROCESSES - 1), codes
    init = container.init_pid
    assert container.state == st.RUNNING and init is not None
    _assert_one_monitor_and_one_init(container, init)
    result = run_cli("-P", lxcpath, "stop", "race2", "-k", env=env)
    assert result.returncode == 0, result.stderr
    _assert_nothing_runs(container, init)
    result = run_cli("-P", lxcpath, "destroy", "race2", env=env)
    assert result.returncode == 0, result.stderr
    assert not container.defined
