"""A warm, single-threaded process that forks the monitors of daemon containers.

Why: a monitor forked from one long-lived parent shares that parent's pages (the interpreter, the
plugins, every imported module) with all its siblings, so each running container costs the host
only the pages its monitor dirtied. It also lets a multi-threaded library caller start containers
without forking itself or executing a fresh interpreter per start.

The supervisor is started on demand by the first ``start`` (``python -m lxcframe.supervisor``),
listens on ``<run dir>/supervisor.sock`` and leaves a few seconds after its last container and worker
exited. It runs no plugin code itself: each request is served by a forked worker. A daemon start's
worker forks init as the supervisor's own child and hands the running container over, so that no
Python process per container stays (:mod:`lxcframe.adopted`); with ``LXCFRAME_ADOPT=0`` the worker
stays as the container's monitor, detached (its own session) and holding the container's locks.

It runs as root and its monitors run hooks as root, so it trusts nothing about its callers:

* the run root is ``0700`` and the socket ``0600`` by explicit ``chmod`` (never the umask, which
  is the first caller's); the supervisor works under ``umask 077``, its monitors under ``022``;
* each connection's ``SO_PEERCRED`` must be root or the supervisor's own uid;
* a request is the caller's plan as built (:mod:`lxcframe.start_request`): a monitor runs it without
  reading the config again; a malformed one is refused with the reason, before anything is forked;
* each request carries the fingerprint of the caller's installation (interpreter, lxcframe's path
  and version, the installed plugins): a supervisor running other code says no, and the caller
  forks its own monitor instead;
* received descriptors come close-on-exec and every one is closed in the supervisor, whatever the
  message: the caller's status pipe and stderr stay with the forked monitor alone, which closes its
  stderr before it reports (:mod:`lxcframe.start_status`);
* connections are served from one poll set, each with its own deadline: a client that connects and
  says nothing delays nobody else;
* a forked monitor closes what is the supervisor's (listener, lock, other clients' connections).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from lxcframe import entering, served, start_request, syscalls, transfer
from lxcframe import state as st
from lxcframe.adopted import Adoptions
from lxcframe.adoption import AdoptionLink, adopting
from lxcframe.channel import Channel
from lxcframe.installation import installation
from lxcframe.run_root import peer_credentials, socket_path
from lxcframe.spawning import MONITOR_UMASK, fork_worker, runtime_environment
from lxcframe.start_request import StartRequest
from lxcframe.start_status import error_record, notifier

# The callers' side, named here too: tests and tools reach the supervisor's protocol through this module.
from lxcframe.supervisor_client import DISABLE_ENV as DISABLE_ENV
from lxcframe.supervisor_client import MAX_PASSED_FDS, OK, fingerprint
from lxcframe.supervisor_client import enabled as enabled
from lxcframe.supervisor_client import request_message as request_message
from lxcframe.supervisor_client import spawn as spawn
from lxcframe.supervisor_client import submit as submit

#: Seconds the supervisor stays after its last monitor exited, ready for the next start.
IDLE_EXIT = 3.0
IDLE_ENV = "LXCFRAME_SUPERVISOR_IDLE"
MAX_REQUEST = start_request.MAX_REQUEST
#: Seconds a connected client has to send its request; it delays no other client meanwhile.
REQUEST_DEADLINE = 5.0
#: A start request carries its status pipe and, when it says so, the caller's stderr; a command four
#: descriptors; an attach stdin, stdout, stderr and those it passes. Room for more, so that extra ones
#: arrive (and are closed) rather than being silently cut off with MSG_CTRUNC.
_MAX_FDS = served.DESCRIPTORS + MAX_PASSED_FDS + 4
_OK = OK


def _lock_path() -> str:
    return os.path.join(st.run_root(), "supervisor.lock")


# --- the supervisor ------------------------------------------------------------------------------


def _preload() -> Any:
    """Import everything a monitor and its child use, and build the host's default plugins."""
    import lxcframe.child
    import lxcframe.cli.commands
    import lxcframe.cli.main
    import lxcframe.container
    import lxcframe.monitor
    import lxcframe.served  # noqa: F401
    from lxcframe.cli import parser
    from lxcframe.plugin_manager import Plugins, keep_warm

    parser.keep_warm()
    _import_builtin_plugins()
    plugins = Plugins()
    plugins.key_registry()
    plugins.api_extensions()
    plugins.hook.lxcframe_preload(plan=None)
    keep_warm(plugins)  # a thin client's command with the default plugins takes these
    return plugins


def _import_builtin_plugins() -> None:
    """Every module of the builtin plugins. Their hooks import their modules when first called, which
    keeps a cold command cheap; here, the monitors and workers forked afterwards would each import them
    again (the cgroup plugin's placement code alone ~20 ms of every thin client's command)."""
    import importlib
    import pkgutil

    import lxcframe.plugins

    for module in pkgutil.walk_packages(lxcframe.plugins.__path__, "lxcframe.plugins."):
        importlib.import_module(module.name)


def _serve_request(request: StartRequest, plugins: Any, notify_fd: int, stderr_fd: int | None,
                   adoption: AdoptionLink | None) -> int:
    """In the forked monitor: run the plan as the caller built it, logging to the caller's stderr too
    until the start is reported."""
    from lxcframe.monitor import run_monitor

    notify = notifier(notify_fd)
    try:
        # What host hooks and plugins read of the environment is the caller's, not the supervisor's
        # first caller's; the monitor's own initial environment (/proc/PID/environ) is the
        # supervisor's, which holds only these variables too.
        os.environ.clear()
        os.environ.update(dict(request.env))
        request.log.apply()
        request.log.forward(stderr_fd)
    except Exception as err:
        notify({"ok": False, "error": error_record(err)})
        return 1
    os.chdir("/")
    return run_monitor(plugins, request.plan, notify, adoption=adoption)


class _Server:
    """The listener, the supervisor's lock, and the connections still to send their request."""

    def __init__(self, listener: socket.socket, lock_fd: int, plugins: Any) -> None:
        self.listener = listener
        self.lock_fd = lock_fd
        self.plugins = plugins
        self.own_fingerprint = fingerprint(plugins)
        #: The preloaded plugins for a caller whose selection is the supervisor's own, else it loaded afresh.
        self._plugins_for = start_request.reusing(plugins)
        self.own_installation = installation()
        self.pending: dict[int, tuple[socket.socket, float]] = {}
        self.children: set[int] = set()
        #: Workers running a client's command: pidfd -> (pid, the client's connection).
        self.commands: dict[int, tuple[int, socket.socket]] = {}
        #: A client's connection -> the pidfd of its worker (a client gone ends its worker).
        self.clients: dict[int, int] = {}
        self.poller = select.poll()
        self.poller.register(listener.fileno(), select.POLLIN)
        #: The containers this server is the parent and monitor of (see :mod:`lxcframe.adopted`).
        self.adoptions = Adoptions(self.close_own, self._plugins_for, self._restart)

    # -- connections --

    def accept_all(self) -> int:
        """Accept every queued connection; returns how many."""
        count = 0
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return count
            except OSError:
                return count  # e.g. EMFILE: the queued clients wait for the next round
            count += 1
            conn.setblocking(False)
            refusal = _refusal(conn)
            if refusal is not None:
                _answer(conn, refusal)
                conn.close()
                continue
            self.pending[conn.fileno()] = (conn, time.monotonic() + REQUEST_DEADLINE)
            self.poller.register(conn.fileno(), select.POLLIN)

    def drop(self, fd: int) -> socket.socket:
        conn, _ = self.pending.pop(fd)
        self.poller.unregister(fd)
        return conn

    def expire(self) -> None:
        now = time.monotonic()
        for fd in [fd for fd, (_, deadline) in self.pending.items() if deadline <= now]:
            self.drop(fd).close()

    def next_deadline(self, default: float) -> float:
        if not self.pending:
            return default
        return max(0.0, min(default, min(d for _, d in self.pending.values()) - time.monotonic()))

    def receive(self, fd: int) -> None:
        """Read one request from a ready connection, answer it, and fork its monitor (a start) or its
        worker (a command of the thin client) if it is good."""
        conn = self.drop(fd)
        fds: list[int] = []
        keep = False
        try:
            try:
                data, fds, flags, _ = socket.recv_fds(conn, MAX_REQUEST, _MAX_FDS,
                                                      socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT)
            except OSError:
                return  # nothing readable after all, or an error: either way this client is done
            request, error = _parsed(data, flags)
            if request is not None and ({"command", "attach_by_name"} & set(request)):
                work, error = self._check_work(conn, request, fds)
                if work is not None:
                    keep = self._fork_worker(conn, work)
                    return
                _answer(conn, error.encode())
                return
            checked, error = self._check(request, fds) if request is not None else (None, error)
            _answer(conn, _OK if checked is not None else error.encode())
            if checked is not None and request is not None:
                self.children.add(self._fork_monitor(conn, *checked, fds[0], fds[1] if len(fds) > 1 else None,
                                                     request["start"]))
        finally:
            # The monitor or worker has its copies: the supervisor keeps no caller's descriptor.
            for received in fds:
                with contextlib.suppress(OSError):
                    os.close(received)
            if not keep:
                conn.close()

    def _check(self, request: dict[str, Any], fds: list[int]) -> tuple[tuple[StartRequest, Any] | None, str]:
        """The start request and the plugins to run it with, or ``None`` and the refusal."""
        if request.get("fingerprint") != self.own_fingerprint:
            return None, "no: this supervisor runs another installation of lxcframe"
        if set(request) - {"stderr"} != {"fingerprint", "start"} or request.get("stderr", True) is not True:
            return None, "no: a request holds a fingerprint, a start and whether stderr comes along, nothing else"
        expected = 2 if "stderr" in request else 1
        if len(fds) != expected:
            return None, f"no: this request carries exactly {expected} descriptor{'s' if expected > 1 else ''}"
        try:
            return start_request.decode(request["start"], self._plugins_for), ""
        except Exception as err:  # whatever the input, the supervisor says why and serves on
            return None, f"no: malformed start request: {err}"

    def _check_work(self, conn: socket.socket, request: dict[str, Any], fds: list[int]
                    ) -> tuple[Callable[[], int] | None, str]:
        """What a worker runs for a thin client's command or a threaded caller's attach by name, or ``None``
        and why not."""
        if "command" in request:
            if request.get("installation") != self.own_installation:
                return None, "no: this server runs another installation of lxcframe"
            if set(request) != {"installation", "command"}:
                return None, "no: a command request holds an installation and a command, nothing else"
            try:
                command = served.parse(request["command"])
            except ValueError as err:
                return None, f"no: malformed command: {err}"
            if len(fds) != served.DESCRIPTORS + len(command.pass_fds):
                return None, (f"no: a command carries stdin, stdout, stderr, its directory and the "
                              f"{len(command.pass_fds)} descriptors it passes")
            client_pid = peer_credentials(conn)[0]
            return lambda: served.run_in_worker(command, fds, client_pid, self.plugins), ""
        if request.get("fingerprint") != self.own_fingerprint:
            return None, "no: this supervisor runs another installation of lxcframe"
        if set(request) != {"fingerprint", "attach_by_name"}:
            return None, "no: an attach request holds a fingerprint and an attach, nothing else"
        try:
            named = served.parse_named_attach(request["attach_by_name"])
            selection = transfer.decode(transfer.unwrap(named.plugins), start_request.PluginSelection)
            plugins = self._plugins_for(selection, runtime_environment())
        except Exception as err:  # whatever the input, the supervisor says why and serves on
            return None, f"no: malformed attach request: {err}"
        if len(fds) != 3 + len(named.pass_fds):
            return None, "no: an attach request carries stdin, stdout, stderr and the descriptors it passes"
        return lambda: served.run_named_attach(named, plugins, fds, conn), ""

    def _fork_worker(self, conn: socket.socket, work: Callable[[], int]) -> bool:
        """Fork a worker running ``work`` and send its pidfd; True when the connection is kept until it ends."""
        def in_worker() -> int:
            try:
                self.close_all()
                return work()  # what it lets out goes to the client's stderr, as the worker's last word
            finally:
                conn.close()

        pid = fork_worker(in_worker)
        pidfd = syscalls.pidfd_open(pid)  # our child, not reaped yet: the pid cannot name another
        try:
            socket.send_fds(conn, [_OK], [pidfd], socket.MSG_NOSIGNAL)
        except OSError:
            os.kill(pid, signal.SIGTERM)  # the client left before its command began
        self.commands[pidfd] = (pid, conn)
        self.clients[conn.fileno()] = pidfd
        self.poller.register(pidfd, select.POLLIN)
        self.poller.register(conn.fileno(), select.POLLIN)
        return True

    def command_ended(self, pidfd: int) -> None:
        """Report a worker's end to its client and forget both."""
        pid, conn = self.commands.pop(pidfd)
        self.poller.unregister(pidfd)
        if self.clients.pop(conn.fileno(), None) is not None:
            self.poller.unregister(conn.fileno())
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        report = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                  else {"exit": os.waitstatus_to_exitcode(status)})
        _answer(conn, json.dumps(report).encode())
        conn.close()

    def client_left(self, fd: int) -> None:
        """A client's connection turned readable or hung up before its command ended: it is gone (it
        sends nothing after its command), and its command is ended as its own process would have
        been, once: SIGTERM, which the command handles (a monitor forwards it to init and cleans up)."""
        pidfd = self.clients.pop(fd)
        self.poller.unregister(fd)  # else every round would find it ready again and signal once more
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)

    def _restart(self, adopted: Any) -> None:
        """Start a rebooted container again: its start request as the first start's caller sent it (the
        same plan), with nobody waiting for the report."""
        nobody = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            self._fork_monitor(None, adopted.request, adopted.plugins, nobody, None, adopted.document)
        finally:
            os.close(nobody)

    def _fork_monitor(self, conn: socket.socket | None, request: StartRequest, plugins: Any, notify_fd: int,
                      stderr_fd: int | None, document: Any) -> int:
        try:
            # What this start needs and no start before it did, imported here once for all monitors.
            plugins.hook.lxcframe_preload(plan=request.plan)
        except Exception:  # the monitor imports it again and reports the failure itself
            pass
        ours, theirs = Channel.pair() if adopting() else (None, None)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # Nothing of the supervisor's stays open in a monitor that runs for the container's
                # life: not the listener, not the supervisor's lock, not other clients' sockets.
                if conn is not None:
                    conn.close()
                self.close_all()
                os.umask(MONITOR_UMASK)  # not the supervisor's 077, nor its first caller's
                os.setsid()
                adoption = None
                if theirs is not None and ours is not None:
                    ours.close()
                    adoption = AdoptionLink(theirs, os.getppid())
                code = _serve_request(request, plugins, notify_fd, stderr_fd, adoption)
            finally:
                os._exit(code)
        if theirs is not None and ours is not None:
            theirs.close()
            self.adoptions.link_start(pid, ours, document, request, plugins)
        return pid

    def close_all(self) -> None:
        """In a process the server forked: close everything of the server's."""
        self.adoptions.close_all()
        self.close_own()

    def close_own(self) -> None:
        """Close the listener, the lock and the clients' connections (not the adoptions')."""
        for conn, _ in self.pending.values():
            conn.close()
        self.pending.clear()
        for pidfd, (_, conn) in self.commands.items():
            os.close(pidfd)
            conn.close()
        self.commands.clear()
        self.listener.close()
        os.close(self.lock_fd)

    # -- the loop --

    def reap(self) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if not done:
                    continue
            self.children.discard(pid)

    def serve_once(self, timeout: float) -> bool:
        """One round of the poll loop; True when anything happened."""
        busy = False
        adoptions = self.adoptions.watched()
        for fd in adoptions:
            self.poller.register(fd, select.POLLIN)
        try:
            ready = self.poller.poll(self.next_deadline(timeout) * 1000)
        finally:
            for fd in adoptions:
                self.poller.unregister(fd)
        for fd, _events in ready:
            if fd in adoptions:
                adoptions[fd]()
                busy = True
            elif fd == self.listener.fileno():
                busy = self.accept_all() > 0 or busy
            elif fd in self.pending:
                self.receive(fd)
                busy = True
            elif fd in self.commands:
                self.command_ended(fd)
                busy = True
            elif fd in self.clients:
                self.client_left(fd)
                busy = True
        self.expire()
        self.reap()
        return busy


def _refusal(conn: socket.socket) -> bytes | None:
    """Why this peer may not use the supervisor, or ``None``: only root and our own uid may."""
    try:
        _pid, uid, _gid = peer_credentials(conn)
    except OSError:
        return b"no: cannot read the caller's credentials"
    if uid in (0, os.geteuid()):
        return None
    return f"no: uid {uid} may not use the supervisor of uid {os.geteuid()}".encode()


def _parsed(data: bytes, flags: int) -> tuple[dict[str, Any] | None, str]:
    """A request's JSON object, or ``None`` and why not."""
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        return None, "no: request too large"
    try:
        request = json.loads(data)
    except ValueError:
        return None, "no: not JSON"
    if not isinstance(request, dict):
        return None, "no: not a JSON object"
    return request, ""


def _answer(conn: socket.socket, message: bytes) -> None:
    with contextlib.suppress(OSError):  # a client that left early must not take the supervisor down
        conn.send(message, socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT)


def _private_run_root() -> None:
    """The run root exists, is ours and is ``0700`` (an older or umask-000 start may have made it wider)."""
    root = st.run_root()
    st.make_private_dirs(root)
    info = os.stat(root)
    if info.st_uid != os.geteuid():
        raise SystemExit(f"{root} belongs to uid {info.st_uid}: not serving from it")
    if info.st_mode & 0o7777 != 0o700:
        os.chmod(root, 0o700)


def serve() -> int:
    os.umask(0o077)  # whatever the first caller's umask, nothing of the supervisor's is shared
    # Nor its signals: started from a background job, SIGINT and SIGQUIT would stay ignored in every
    # worker (a thin client's Ctrl-C lost) and in every host hook they run.
    entering.interpreter_signals()
    _private_run_root()
    lock = os.open(_lock_path(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return 0  # another supervisor serves this run directory
    path = socket_path()
    try:
        syscalls.set_process_name("lxcframe-sup")
        plugins = _preload()  # a broken host config raises here: the server cannot serve, it leaves
        os.chdir("/")  # hold no directory busy (sys.path has absolute paths only under -m)
        gc.collect()
        gc.freeze()  # the collector must not write to pages every monitor shares
        listener, own_socket = _listener(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_lock_path())  # nothing of a server that never served stays in the run directory
        os.close(lock)
        raise
    server = _Server(listener, lock, plugins)
    server.adoptions.adopt_again()
    idle_exit = float(os.environ.get(IDLE_ENV) or IDLE_EXIT)
    idle_since = time.monotonic()
    try:
        while True:
            busy = server.serve_once(0.5)
            if server.children or server.pending or server.commands or server.adoptions.active() or busy:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_exit:
                break
        # Leave: first make the socket unreachable, then serve whoever connected before that. A socket
        # of systemd's stays: a connection to it starts the next server.
        if own_socket:
            os.unlink(path)
            server.accept_all()
        while server.pending or server.commands:
            server.serve_once(0.1)
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_lock_path())
        os.close(lock)
    return 0


#: systemd's socket activation (sd_listen_fds(3)): the listening socket is descriptor 3.
_ACTIVATION_FD = 3


def _activated() -> bool:
    return os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1"


def _listener(path: str) -> tuple[socket.socket, bool]:
    """The listening socket, and whether it is this server's own (else systemd's, handed over by socket
    activation: contrib/systemd/lxcframe.socket makes it 0600 in a 0700 run directory)."""
    if _activated():
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)  # not for the monitors and workers this server forks
        listener = socket.socket(fileno=_ACTIVATION_FD)
        if listener.family != socket.AF_UNIX or listener.type != socket.SOCK_SEQPACKET:
            raise SystemExit("the activation socket is not a unix seqpacket socket (ListenSequentialPacket=)")
        listener.set_inheritable(False)
        listener.setblocking(False)
        return listener, False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    listener.bind(path)
    os.chmod(path, 0o600)  # explicit: connecting needs write permission on the socket
    listener.listen(64)
    return listener, True


def main() -> int:
    # Detach, unless started by systemd: its service manager is the parent then.
    if not _activated() and os.fork() != 0:
        return 0
    return serve()


if __name__ == "__main__":
    raise SystemExit(main())
