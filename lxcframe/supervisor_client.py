"""The supervisor's callers' side: who may use it, and handing it a daemon start or a threaded caller's attach.

The supervisor itself (:mod:`lxcframe.supervisor`) imports the command line and the attach code for its
workers; callers import only this, so that neither the library nor a daemon start's caller pulls in the
server (nor forms an import circle with it).
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from lxcframe import state as st
from lxcframe import transfer
from lxcframe.hashing import sha256
from lxcframe.run_root import connect
from lxcframe.spawning import start_server
from lxcframe.version import __version__

if TYPE_CHECKING:
    from lxcframe.start_request import StartRequest

#: ``LXCFRAME_SUPERVISOR=0`` forks monitors from the caller instead.
DISABLE_ENV = "LXCFRAME_SUPERVISOR"
#: The supervisor's answer when it took the work (else why not, "no: …").
OK = b"ok"
#: Descriptors a command or an attach passes on, at most (more: an attach goes to a helper, which
#: inherits them).
MAX_PASSED_FDS = 64


def fingerprint(plugins: Any) -> str:
    """What code a process runs: interpreter, lxcframe's location and version, the plugins it found.

    Built from what ``plugins`` already discovered (no second scan of ``sys.path``: a few µs), so
    a request costs its caller nothing measurable; the supervisor compares it with its own.
    """
    parts = [sys.executable, _PACKAGE_DIR, __version__]
    parts += sorted(f"{r.name}={r.distribution} {r.version}" for r in plugins.records())
    return sha256("\0".join(parts).encode()).hexdigest()


_PACKAGE_DIR = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))


def spawn() -> None:
    """Start a supervisor for this run directory (it detaches at once); a no-op race with another is fine."""
    st.make_private_dirs(st.run_root())
    start_server(wait=True)


def enabled(server: bool | None = None) -> bool:
    """Whether work goes to the server: as the caller says (``Container(..., server=False)``), else unless
    ``LXCFRAME_SUPERVISOR=0``."""
    if server is not None:
        return server
    return os.environ.get(DISABLE_ENV, "") in ("", "1")


def request_message(request: StartRequest, own_fingerprint: str, *, with_stderr: bool = False) -> bytes:
    """What a caller sends: its installation's fingerprint and the start request (plan included);
    ``"stderr": true`` when a second descriptor, the caller's stderr, comes with it."""
    message: dict[str, Any] = {"fingerprint": own_fingerprint, "start": transfer.wrap(request)}
    if with_stderr:
        message["stderr"] = True
    return json.dumps(message, separators=(",", ":")).encode()


def submit(request: StartRequest, own_fingerprint: str, notify_fd: int, stderr_fd: int | None = None,
           timeout: float = 10.0) -> bool:
    """Hand a start to the supervisor (starting one if needed); False when none would take it.

    ``stderr_fd`` (the caller's stderr) gets the monitor's log lines until it reports on ``notify_fd``.
    The supervisor answers before it forks: ``ok``, or why not (another installation's code, a
    refused caller, a malformed request), and then the caller starts the monitor itself.
    """
    message = request_message(request, own_fingerprint, with_stderr=stderr_fd is not None)
    fds = [notify_fd] if stderr_fd is None else [notify_fd, stderr_fd]
    client = connect()
    if client is None:
        spawn()
        deadline = time.monotonic() + timeout
        while client is None and time.monotonic() < deadline:
            time.sleep(0.005)
            client = connect()
        if client is None:
            return False
    with client:
        try:
            socket.send_fds(client, [message], fds)
            client.settimeout(timeout)
            answer = client.recv(256)
        except OSError:
            return False  # the supervisor was leaving (or died): nobody took the request
    return answer == OK


def exit_status(report: bytes) -> int:
    """The exit status in the server's report of a worker's end (128 + N for a signal N)."""
    from lxcframe.errors import ContainerError

    try:
        ended = json.loads(report)
    except ValueError:
        ended = None
    if isinstance(ended, dict) and isinstance(ended.get("exit"), int):
        return int(ended["exit"])
    if isinstance(ended, dict) and isinstance(ended.get("signal"), int):
        return 128 + int(ended["signal"])
    raise ContainerError("the server ended without reporting the end of the work it took")


def submit_attach_by_name(named: dict[str, Any], own_fingerprint: str, pass_fds: tuple[int, ...]) -> int | None:
    """Have a worker of the server prepare and run a threaded caller's attach from the container's name
    and the options; the command's exit status, or ``None`` when no server of this installation took it
    (none runs yet: one is started for the next attach). An error of the preparation (not running, no
    parts file…) is raised here."""
    return _submit_work({"fingerprint": own_fingerprint, "attach_by_name": named}, pass_fds)


def _submit_work(message: dict[str, Any], pass_fds: tuple[int, ...]) -> int | None:
    """Hand the work over and wait for its end. Called with quick GIL hand-offs (:mod:`lxcframe.handoffs`):
    a wait longer than :data:`QUICK_WAIT` seconds (a long command) pauses them."""
    from lxcframe.handoffs import paused

    data = json.dumps(message, separators=(",", ":")).encode()
    client = connect()
    if client is None:
        start_server(wait=False)
        return None
    with client:
        if not _handed_over(client, data, pass_fds):
            return None
        # Taken: from here the work runs, whatever happens to this connection (never a second time).
        if not select.select([client], [], [], QUICK_WAIT)[0]:
            with paused():
                select.select([client], [], [])
        return _end_reported(client)


#: How long a threaded caller waits for the end with quick hand-offs before it waits as usual.
QUICK_WAIT = 0.25


def _handed_over(client: socket.socket, data: bytes, pass_fds: tuple[int, ...]) -> bool:
    try:
        socket.send_fds(client, [data], [0, 1, 2, *pass_fds])
        answer, fds, _, _ = socket.recv_fds(client, 256, 1, socket.MSG_CMSG_CLOEXEC)
        for fd in fds:
            os.close(fd)  # the worker's pidfd: a library caller forwards no signal
    except OSError:
        return False
    return answer == OK


def _end_reported(client: socket.socket) -> int:
    try:
        report = client.recv(MAX_REPORT)
        if report.startswith(b'{"error"'):
            _raise_reported(report)
            report = client.recv(MAX_REPORT)
    except OSError:
        report = b""
    return exit_status(report)


#: A worker's report: its end, or first an error of an attach prepared by name.
MAX_REPORT = 65536


def _raise_reported(report: bytes) -> None:
    from lxcframe import errors

    record = json.loads(report)["error"]
    cls = getattr(errors, str(record.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.LxcframeError)):
        cls = errors.ContainerError
    raise cls(str(record.get("message")))
