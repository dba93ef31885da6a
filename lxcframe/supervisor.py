"""A warm, single-threaded process that forks the monitors of daemon containers.

Why: a monitor forked from one long-lived parent shares that parent's pages (the interpreter, the
plugins, every imported module) with all its siblings, so each running container costs the host
only the pages its monitor dirtied. It also lets a multi-threaded library caller start containers
without forking itself or executing a fresh interpreter per start.

The supervisor is started on demand by the first ``start`` (``python -m lxcframe.supervisor``),
listens on ``<run dir>/supervisor.sock`` and leaves a few seconds after its last monitor exited.
It never touches containers itself: each request is served by a forked monitor. Monitors outlive
it; they are detached (their own session) and hold their containers' locks themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import select
import socket
import subprocess
import sys
import time
from typing import Any

from lxcframe import state as st

#: Seconds the supervisor stays after its last monitor exited, ready for the next start.
IDLE_EXIT = 3.0
IDLE_ENV = "LXCFRAME_SUPERVISOR_IDLE"
#: ``LXCFRAME_SUPERVISOR=0`` forks monitors from the caller instead.
DISABLE_ENV = "LXCFRAME_SUPERVISOR"
MAX_REQUEST = 1 << 20


def socket_path() -> str:
    return os.path.join(st.run_root(), "supervisor.sock")


def _lock_path() -> str:
    return os.path.join(st.run_root(), "supervisor.lock")


# --- client side ---------------------------------------------------------------------------------


def _connect() -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        client.connect(socket_path())
    except OSError:
        client.close()
        return None
    return client


def _spawn() -> None:
    os.makedirs(st.run_root(), mode=0o755, exist_ok=True)
    # The supervisor forks once more and this process exits at once: nobody's child, nobody's zombie.
    subprocess.run(
        [sys.executable, "-m", "lxcframe.supervisor"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, check=False,
    )


def enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "") in ("", "1")


def submit(request: dict[str, Any], notify_fd: int, timeout: float = 10.0) -> bool:
    """Hand a start to the supervisor (starting one if needed); False when none could be reached."""
    client = _connect()
    if client is None:
        _spawn()
        deadline = time.monotonic() + timeout
        while client is None and time.monotonic() < deadline:
            time.sleep(0.005)
            client = _connect()
        if client is None:
            return False
    with client:
        socket.send_fds(client, [json.dumps(request).encode()], [notify_fd])
    return True


# --- the supervisor ------------------------------------------------------------------------------


def _preload() -> Any:
    """Import everything a monitor and its child use, and build the host's default plugins."""
    import lxcframe.child
    import lxcframe.container
    import lxcframe.monitor
    import lxcframe.planner  # noqa: F401
    from lxcframe.plugin_manager import Plugins

    plugins = Plugins()
    plugins.key_registry()
    plugins.api_extensions()
    return plugins


def _serve_request(data: bytes, notify_fd: int, default_plugins: Any) -> int:
    from lxcframe.container import Container
    from lxcframe.launcher import _notifier
    from lxcframe.log import HUB
    from lxcframe.monitor import _error_record, run_monitor
    from lxcframe.planner import build_plan
    from lxcframe.plugin_manager import Plugins

    notify = _notifier(notify_fd)
    try:
        request = json.loads(data)
        os.environ.clear()
        os.environ.update(request.get("env", {}))
        log = request.get("log", {})
        HUB.configure(level=log.get("level"), path=log.get("path"), fmt=log.get("fmt"))
        disabled = frozenset(request.get("disable", ()))
        plugins = default_plugins if disabled == default_plugins.disabled else Plugins(disabled)
        container = Container(request["name"], request["lxcpath"], plugins=plugins)
        plan = build_plan(plugins, container.name, container.lxcpath, container.load_config(),
                          tuple(request["argv"]) or None, request["mode"])
    except Exception as err:
        notify({"ok": False, "error": _error_record(err)})
        return 1
    os.chdir("/")
    return run_monitor(plugins, plan, notify)


def _fork_monitor(listener: socket.socket, data: bytes, notify_fd: int, plugins: Any) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            listener.close()
            os.setsid()
            code = _serve_request(data, notify_fd, plugins)
        finally:
            os._exit(code)
    os.close(notify_fd)
    return pid


def _accept(listener: socket.socket, plugins: Any, children: set[int]) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(5.0)  # a client that connects and says nothing must not stall every start
        try:
            data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 1)
        except (TimeoutError, OSError):
            return
    if data and fds:
        children.add(_fork_monitor(listener, data, fds[0], plugins))
    for fd in fds[1:]:
        os.close(fd)


def _reap(children: set[int]) -> None:
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue
        children.discard(pid)


def serve() -> int:
    os.makedirs(st.run_root(), mode=0o755, exist_ok=True)
    lock = os.open(_lock_path(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another supervisor serves this run directory
    from lxcframe.syscalls import set_process_name

    set_process_name("lxcframe-sup")
    plugins = _preload()
    os.chdir("/")  # hold no directory busy (sys.path has absolute paths only under -m)
    gc.collect()
    gc.freeze()  # the collector must not write to pages every monitor shares
    path = socket_path()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    listener.bind(path)
    listener.listen(64)
    children: set[int] = set()
    idle_exit = float(os.environ.get(IDLE_ENV) or IDLE_EXIT)
    idle_since = time.monotonic()
    try:
        while True:
            ready, _, _ = select.select([listener], [], [], 0.5)
            if ready:
                _accept(listener, plugins, children)
            _reap(children)
            if children or ready:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_exit:
                break
        # Leave: first make the socket unreachable, then serve whoever connected before that.
        os.unlink(path)
        listener.setblocking(False)
        while True:
            try:
                _accept(listener, plugins, children)
            except BlockingIOError:
                break
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_lock_path())
        os.close(lock)
    return 0


def main() -> int:
    if os.fork() != 0:
        return 0
    return serve()


if __name__ == "__main__":
    raise SystemExit(main())
