"""The supervisor runs as root and forks monitors that run hooks as root: attacks on its socket.

Each test plays the hostile or careless caller (a umask of 000, another user, a client that sends
descriptors and no request or nothing at all, another installation) and shows that it gets no
start served, no descriptor kept, no delay imposed on others, nothing of the supervisor's inside a
monitor.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcframe import state as st
from lxcframe import supervisor, supervisor_client

# The supervisor's own defences, with its daemon starts' monitors (each container's own Python monitor,
# as without adoption) still there to inspect; the containers it adopts are tested in tests/test_adoption.py.
pytestmark = [pytest.mark.container, pytest.mark.usefixtures("per_container_monitor")]

NOBODY = 65534


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _supervisor_pid(rundir: str) -> int:
    """The supervisor of ``rundir``: the lxcframe-sup process holding that run directory's lock."""
    lock = os.path.join(rundir, "supervisor.lock")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{name}/comm") as handle:
                if handle.read().strip() != "lxcframe-sup":
                    continue
            if _holds(int(name), lock):
                return int(name)
    raise AssertionError(f"no supervisor holds {lock}")


def _holds(pid: int, path: str) -> bool:
    wanted = os.stat(path)
    for name in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            found = os.stat(f"/proc/{pid}/fd/{name}")
            if (found.st_dev, found.st_ino) == (wanted.st_dev, wanted.st_ino):
                return True
    return False


def _request(name: str, lxcpath: str, fingerprint: str | None = None) -> bytes:
    """A start request as a caller of this installation would send it (or of another, by fingerprint)."""
    from lxcframe.container import Container
    from lxcframe.plugin_manager import Plugins
    from lxcframe.start_request import StartRequest

    plugins = Plugins()
    plan = Container(name, lxcpath, plugins=plugins)._plan(None, "daemon")
    own = supervisor.fingerprint(plugins)
    return supervisor.request_message(StartRequest.for_plan(plan, plugins, detach=True),
                                      own if fingerprint is None else fingerprint)


def _read_notify(read_end: int, timeout: float) -> bytes | None:
    """What the monitor reports on the notify pipe: b"" when every write end is closed (nobody will
    report), the record when a monitor ran the start, None when nothing happened within ``timeout``."""
    readable, _, _ = select.select([read_end], [], [], timeout)
    return os.read(read_end, 65536) if readable else None


@contextlib.contextmanager
def _traversable(path: str) -> Iterator[None]:
    """Let any user reach ``path`` (o+x on it and its parents) for the test, then put the modes back."""
    changed: list[tuple[str, int]] = []
    current = path
    while current != "/":
        mode = _mode(current)
        if not mode & 0o001:
            changed.append((current, mode))
            os.chmod(current, mode | 0o001)
        current = os.path.dirname(current)
    try:
        yield
    finally:
        for where, mode in changed:
            os.chmod(where, mode)


@contextlib.contextmanager
def _socket_open_to_anyone(rundir: str) -> Iterator[str]:
    """The supervisor's socket reachable and writable by any user for the test (modes put back after),
    so that the credential check alone must refuse a stranger."""
    sock_path = os.path.join(rundir, "supervisor.sock")
    with _traversable(rundir):
        old_mode = _mode(sock_path)
        os.chmod(sock_path, 0o777)
        try:
            yield sock_path
        finally:
            os.chmod(sock_path, old_mode)


def test_umask_000_caller_leaves_no_world_writable_run_dir_socket_or_monitor(make_container, rundir):
    container = make_container("umask0")
    old = os.umask(0)
    try:
        container.start()
    finally:
        os.umask(old)
    try:
        recorded = container.current_state()
        runtime = st.runtime_dir(container.lxcpath, container.name)
        assert _mode(rundir) == 0o700
        assert _mode(os.path.dirname(runtime)) == 0o700  # the per-lxcpath directory
        assert _mode(runtime) == 0o700
        assert _mode(os.path.join(rundir, "supervisor.sock")) == 0o600
        assert _mode(os.path.join(runtime, "state.json")) & 0o077 == 0
        with open(f"/proc/{recorded.monitor_pid}/status") as handle:
            umask = next(line.split()[1] for line in handle if line.startswith("Umask:"))
        assert int(umask, 8) == 0o022, "the monitor must not inherit the caller's (or the supervisor's) umask"
        with open(f"/proc/{_supervisor_pid(rundir)}/status") as handle:
            umask = next(line.split()[1] for line in handle if line.startswith("Umask:"))
        assert int(umask, 8) == 0o077
    finally:
        container.stop(kill=True)


def _as_nobody(sock_path: str, request: bytes, fds: list[int], result_write: int) -> None:
    """In a forked child: drop to nobody, connect, send ``request`` with ``fds`` (closed once sent),
    write back what happened."""
    try:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        client.connect(sock_path)
        os.write(result_write, b"connected;")
        client.settimeout(5)
        try:
            socket.send_fds(client, [request], fds)
            for fd in fds:
                os.close(fd)
            answer = client.recv(256)
        except OSError as err:
            answer = f"error {err}".encode()
        os.write(result_write, b"answer:" + answer)
    except BaseException as err:  # report, never raise in a forked pytest
        os.write(result_write, f"failed:{err!r}".encode())
    finally:
        os._exit(0)


def test_another_user_reaching_the_socket_gets_no_start(make_container, rundir):
    keeper = make_container("keeper")  # keeps the supervisor up
    target = make_container("victim")
    keeper.start()
    try:
        # Whatever the modes: the test opens the way so that the credential check alone must refuse.
        with _socket_open_to_anyone(rundir) as sock_path:
            notify_read, notify_write = os.pipe()
            result_read, result_write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(notify_read)
                os.close(result_read)
                _as_nobody(sock_path, _request(target.name, target.lxcpath), [notify_write], result_write)
            os.close(notify_write)
            os.close(result_write)
            os.waitpid(pid, 0)
            result = os.read(result_read, 4096)
            os.close(result_read)
            report = _read_notify(notify_read, 10)
            os.close(notify_read)
        assert result.startswith(b"connected;"), f"nobody could not even reach the socket: {result!r}"
        # Refused at once: the request cannot even be sent, or it is answered "no".
        assert result.startswith((b"connected;answer:no", b"connected;answer:error")), \
            f"nobody's request was not refused: {result!r}"
        assert report == b"", f"a monitor ran nobody's start: {report!r}"
        assert target.state == st.STOPPED
        # The refusal did not take the supervisor down: root's next start is served by it.
        target.start()
        assert _parent(target.current_state().monitor_pid) == _supervisor_pid(rundir)
        target.stop(kill=True)
    finally:
        keeper.stop(kill=True)


def test_another_user_reaching_the_socket_gets_no_command_run(make_container, rundir, monkeypatch):
    """A thin client's command runs as root in a worker of the server: nobody must not get one."""
    import json

    from lxcframe.installation import installation

    monkeypatch.setenv("LXCFRAME_SUPERVISOR_IDLE", "5")
    keeper = make_container("cmdkeep")
    keeper.start()  # keeps the server up
    # Run as root, this command would write a host file: a config line that runs a hook as root.
    config = os.path.join(keeper.lxcpath, keeper.name, "config")
    before = Path(config).read_text()
    message = json.dumps({"installation": installation(), "command": {
        "argv": ["-P", keeper.lxcpath, "config", "set", keeper.name, "lxc.hook.pre-start", "/tmp/pwned"],
        "env": {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, "umask": 0o022, "path0": "", "pass_fds": []}}).encode()
    try:
        with _socket_open_to_anyone(rundir) as sock_path:
            result_read, result_write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(result_read)
                _as_nobody(sock_path, message, [os.dup(0), os.dup(1), os.dup(2), os.open("/", os.O_PATH)],
                           result_write)
            os.close(result_write)
            os.waitpid(pid, 0)
            result = os.read(result_read, 4096)
            os.close(result_read)
        assert result.startswith(b"connected;"), f"nobody could not even reach the socket: {result!r}"
        assert result.startswith((b"connected;answer:no: uid 65534", b"connected;answer:error")), result
        assert Path(config).read_text() == before
        assert _children(_supervisor_pid(rundir)) == {keeper.current_state().monitor_pid}
    finally:
        keeper.stop(kill=True)


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return {int(child) for child in handle.read().split()}


def test_descriptors_sent_without_a_request_are_closed(make_container, rundir):
    keeper = make_container("fdkeep")
    keeper.start()
    try:
        read_ends = []
        for _ in range(200):
            read_end, write_end = os.pipe()
            read_ends.append(read_end)
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as client:
                client.connect(os.path.join(rundir, "supervisor.sock"))
                socket.send_fds(client, [b""], [write_end])
            os.close(write_end)
        try:
            deadline = time.monotonic() + 10
            open_ends = list(read_ends)
            while open_ends and time.monotonic() < deadline:
                readable, _, _ = select.select(open_ends, [], [], 0.2)
                for fd in readable:
                    assert os.read(fd, 1) == b""
                    open_ends.remove(fd)
            assert not open_ends, f"the supervisor keeps {len(open_ends)} descriptors it was sent"
        finally:
            for fd in read_ends:
                os.close(fd)
        second = make_container("fdnext")
        second.start()  # still served
        second.stop(kill=True)
    finally:
        keeper.stop(kill=True)


@pytest.mark.serial  # a time bound, which a second shard's load would skew
def test_a_silent_client_delays_no_other_start(make_container, rundir):
    keeper, other = make_container("quiet1"), make_container("quiet2")
    keeper.start()
    try:
        sup = _supervisor_pid(rundir)
        sockets_before = _socket_fds(sup)
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as silent:
            silent.connect(os.path.join(rundir, "supervisor.sock"))
            # The supervisor has accepted it (a new connected socket among its descriptors) and now
            # waits for its request.
            deadline = time.monotonic() + 10
            while _socket_fds(sup) == sockets_before and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(_socket_fds(sup) - sockets_before) == 1, "the supervisor never accepted the client"
            started = time.monotonic()
            other.start()
            elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"a start waited {elapsed:.1f} s behind a silent client"
        other.stop(kill=True)
    finally:
        keeper.stop(kill=True)


def _socket_fds(pid: int) -> set[str]:
    return {target for target in _fd_targets(pid) if target.startswith("socket:")}


def _fd_targets(pid: int) -> dict[str, tuple[int, int]]:
    found = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            info = os.stat(f"/proc/{pid}/fd/{name}")
            found[os.readlink(f"/proc/{pid}/fd/{name}")] = (info.st_dev, info.st_ino)
    return found


def test_a_monitor_keeps_nothing_of_the_supervisor(make_container, rundir):
    container = make_container("inherit")
    container.start()
    try:
        monitor = container.current_state().monitor_pid
        sup = _supervisor_pid(rundir)
        assert _parent(monitor) == sup
        lock = os.stat(os.path.join(rundir, "supervisor.lock"))
        monitor_fds = _fd_targets(monitor)
        assert (lock.st_dev, lock.st_ino) not in monitor_fds.values(), "the monitor holds the supervisor's lock"
        sup_sockets = {target for target in _fd_targets(sup) if target.startswith("socket:")}
        shared = sup_sockets & {target for target in monitor_fds if target.startswith("socket:")}
        assert not shared, f"the monitor holds the supervisor's sockets {shared}"
    finally:
        container.stop(kill=True)


def test_a_caller_of_another_installation_is_not_served(make_container, rundir, monkeypatch):
    keeper, target = make_container("inst1"), make_container("inst2")
    keeper.start()
    try:
        # A raw request that says it comes from other code: refused, its descriptor closed.
        notify_read, notify_write = os.pipe()
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as client:
            client.connect(os.path.join(rundir, "supervisor.sock"))
            socket.send_fds(client, [_request(target.name, target.lxcpath, fingerprint="another venv")],
                            [notify_write])
        os.close(notify_write)
        report = _read_notify(notify_read, 10)
        os.close(notify_read)
        assert report == b"", f"the supervisor served another installation's start: {report!r}"
        assert target.state == st.STOPPED
        # Through the library: a caller whose installation differs starts its own monitor.
        monkeypatch.setattr(supervisor_client, "fingerprint", lambda plugins: "another venv")
        target.start()
        try:
            monitor = target.current_state().monitor_pid
            assert _parent(monitor) != _supervisor_pid(rundir)
        finally:
            target.stop(kill=True)
    finally:
        keeper.stop(kill=True)


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        data = handle.read()
    return int(data[data.rindex(b")") + 2 :].split()[1])
