"""state.json names pids that root signals: a forged or stale one must never make root hit a stranger.

The attacker writes a state file (as someone who could write the run directory, or as a stale file
would read) naming a root process of the host that is not the container's, holds the container's
monitor lock or not, and asks root to stop the container. The stranger must live. Also: a second
run directory must not run the same container twice, and stop of a STARTING container acts.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import ContainerError, LxcframeError

pytestmark = pytest.mark.container

_HOLD_LOCK = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "time.sleep(120)\n"
)


#: Answers SIGUSR2 with a line. Every other signal keeps its default action: the halt signals
#: (SIGPWR, the busybox template's SIGUSR1), SIGTERM and SIGKILL all end it.
_STRANGER = (
    "import signal, sys\n"
    "signal.signal(signal.SIGUSR2, lambda *_: print('alive', flush=True))\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    signal.pause()\n"
)


@contextlib.contextmanager
def _python(code: str, *args: str, ready: bytes) -> Iterator[subprocess.Popen[bytes]]:
    """A Python process running ``code``, yielded once it printed ``ready``, killed at the end."""
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline() == ready
        yield process
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _stranger() -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """An unrelated root process of the host: the one a forged state wants killed."""
    return _python(_STRANGER, ready=b"ready\n")


def _alive(stranger: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    """Whether the stranger still runs its own code: it answers a SIGUSR2 sent now. A signal that
    ends it, sent before (by a stop), has already doomed it when ``kill`` returned, so it cannot
    answer: no answer (end of its output) within ``timeout`` means it was hit."""
    assert stranger.stdout is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(stranger.pid, signal.SIGUSR2)
    readable, _, _ = select.select([stranger.stdout], [], [], timeout)
    return bool(readable) and stranger.stdout.readline() == b"alive\n"


@contextlib.contextmanager
def _lock_holder(container: Container) -> Iterator[subprocess.Popen[bytes]]:
    """The attacker's process holding the container's monitor.lock, as a live monitor would."""
    directory = st.runtime_dir(container.lxcpath, container.name)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with _python(_HOLD_LOCK, os.path.join(directory, "monitor.lock"), ready=b"held\n") as process:
        yield process


def _forge(container: Container, *, monitor: int | None, init: int, mode: int = 0o600,
           state: str = st.RUNNING) -> None:
    directory = st.runtime_dir(container.lxcpath, container.name)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    data = {
        "name": container.name, "lxcpath": container.lxcpath, "state": state,
        "monitor_pid": monitor, "monitor_start": st.process_start_time(monitor) if monitor else None,
        "init_pid": init, "init_start": st.process_start_time(init),
        "started_at": time.time(), "mode": "daemon", "records": {},
    }
    path = os.path.join(directory, "state.json")
    with open(path, "w") as handle:
        json.dump(data, handle)
    os.chmod(path, mode)


def _remove_forgery(container: Container) -> None:
    directory = st.runtime_dir(container.lxcpath, container.name)
    for leaf in ("state.json", "monitor.lock", "lock"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, leaf))
    for path in (directory, os.path.dirname(directory)):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _stop_kill_spares(container: Container, stranger: subprocess.Popen[bytes]) -> None:
    """Root's ``stop -k`` (and a plain stop) must leave the stranger alive, with an error or as stale."""
    for kill in (True, False):
        with contextlib.suppress(ContainerError):
            container.stop(kill=kill, timeout=1)
        assert _alive(stranger), f"stop{' -k' if kill else ''} signalled a stranger"


def test_forged_state_with_held_monitor_lock_cannot_kill_a_stranger(make_container):
    container = make_container("forged1")
    try:
        with _stranger() as stranger, _lock_holder(container) as holder:
            # The lock is held, by the attacker's process: it is named the monitor, the stranger init.
            _forge(container, monitor=holder.pid, init=stranger.pid)
            with pytest.raises(ContainerError, match="not trusting"):
                container.stop(kill=True)
            _stop_kill_spares(container, stranger)
            # Named as monitor and init both: it does not hold the lock, it is not the monitor.
            _forge(container, monitor=stranger.pid, init=stranger.pid)
            with pytest.raises(ContainerError, match="not trusting"):
                container.stop(kill=True)
            _stop_kill_spares(container, stranger)
            assert holder.poll() is None
    finally:
        _remove_forgery(container)


def test_stale_state_of_a_dead_monitor_cannot_kill_a_stranger(make_container):
    container = make_container("forged2")
    try:
        with _stranger() as stranger:
            # No monitor lock held: the monitor "died" and its init "lives on" - the stranger.
            _forge(container, monitor=None, init=stranger.pid)
            assert container.state == st.STOPPED  # not a container init: stale, not RUNNING
            _forge(container, monitor=None, init=stranger.pid)
            container.stop(kill=True)  # it cleans up after the "dead monitor", and kills nothing
            assert _alive(stranger)
            assert container.current_state() is None
    finally:
        _remove_forgery(container)


def test_a_state_file_others_could_write_is_refused(make_container):
    container = make_container("forged3")
    try:
        with _stranger() as stranger:
            # World-writable (as a start under umask 000 left it): whatever it says is not believed.
            _forge(container, monitor=None, init=stranger.pid, mode=0o666)
            with pytest.raises(ContainerError, match="another user"):
                container.stop(kill=True)
            assert _alive(stranger)
    finally:
        _remove_forgery(container)


def test_malformed_state_is_a_clear_error_not_a_traceback(make_container):
    container = make_container("forged4")
    directory = st.runtime_dir(container.lxcpath, container.name)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        path = os.path.join(directory, "state.json")
        with open(path, "w") as handle:
            json.dump({"name": container.name, "lxcpath": container.lxcpath, "state": "RUNNING",
                       "init_pid": "1; rm -rf /", "surprise": 1}, handle)
        os.chmod(path, 0o600)
        with pytest.raises(ContainerError, match=r"malformed state file .*state\.json"):
            container.stop(kill=True)
    finally:
        _remove_forgery(container)


def test_a_second_run_directory_cannot_start_a_running_container(make_container, tmp_path, monkeypatch):
    container = make_container("tworuns")
    container.start()
    first_rundir = os.environ[st.RUN_ROOT_ENV]
    try:
        monkeypatch.setenv(st.RUN_ROOT_ENV, str(tmp_path / "run2"))
        # The same container reached through a symlinked lxcpath, from another run directory.
        alias = tmp_path / "alias"
        alias.symlink_to(container.lxcpath)
        again = Container(container.name, str(alias))
        try:
            with pytest.raises(LxcframeError, match="already running"):
                again.start()
        finally:
            if again.state != st.STOPPED:
                again.stop(kill=True)
        files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "run2") for f in fs
                 if f not in ("supervisor.sock", "supervisor.lock")]
        assert not files, f"the refused start left {files}"
    finally:
        monkeypatch.setenv(st.RUN_ROOT_ENV, first_rundir)
        container.stop(kill=True)
    deadline = time.monotonic() + 10
    while os.path.exists(tmp_path / "run2" / "supervisor.sock") and time.monotonic() < deadline:
        time.sleep(0.05)


def _children(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{name}/stat", "rb") as handle:
                data = handle.read()
                if int(data[data.rindex(b")") + 2 :].split()[1]) == pid:
                    found.append(int(name))
    return found


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def test_stop_kill_of_a_starting_container_aborts_the_start(make_container, tmp_path):
    hook = tmp_path / "slow-pre-start"
    # The hook's own child must end with the aborted start too, not only the hook.
    hook.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {tmp_path}/hook-child\nexec sleep 30\n")
    hook.chmod(0o755)
    container = make_container("slowstart", config=(("lxc.hook.pre-start", str(hook)),))
    outcome: list[BaseException | int] = []

    def start() -> None:
        try:
            outcome.append(Container(container.name, container.lxcpath).start())
        except BaseException as err:
            outcome.append(err)

    starter = threading.Thread(target=start)
    starter.start()
    try:
        assert container.wait(st.STARTING, 20)
        monitor = container.current_state().monitor_pid
        deadline = time.monotonic() + 10
        hooks: list[int] = []
        while not hooks and time.monotonic() < deadline:
            hooks = [pid for pid in _children(monitor) if _comm(pid) == "sleep"]
            time.sleep(0.05)
        assert hooks, "the pre-start hook never ran"
        started = time.monotonic()
        container.stop(kill=True)
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"stop -k waited {elapsed:.1f} s for a start it should have aborted"
        assert container.state == st.STOPPED
        starter.join(30)
        assert len(outcome) == 1 and isinstance(outcome[0], LxcframeError), outcome
        assert "abort" in str(outcome[0])
        assert all(st.process_start_time(pid) is None for pid in hooks), "the hook outlived the aborted start"
        hook_child = int((tmp_path / "hook-child").read_text())
        deadline = time.monotonic() + 5
        while st.process_start_time(hook_child) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert st.process_start_time(hook_child) is None, "a child of the hook outlived the aborted start"
    finally:
        starter.join(60)
