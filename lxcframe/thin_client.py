"""The command line as a thin client of the warm server (the default; ``LXCFRAME_SERVER=0``: no client).

A command costs a cold interpreter ~0.25 s of imports, plugin registration and attrs generating its
classes before it does anything. The server (:mod:`lxcframe.supervisor`) has done all that once: the
client hands it the command as typed (its words, environment, umask, working directory and its stdin,
stdout and stderr by ``SCM_RIGHTS``), the server forks a worker from its warm state, and the worker runs
the command exactly as this process would have, writing to this process's own descriptors. The client
imports nothing but the standard library's socket and json (and ``lxcframe.run_root``), passes on the
signals it gets (SIGINT, SIGTERM, SIGHUP…) to the worker through a pidfd, and ends with the worker's
exit status.

What stays in this process: ``console``, and ``attach``, ``execute`` or ``start -F`` with a terminal on
stdin, since the container's processes must then have the caller's terminal as their controlling one,
which a process of another session cannot get. A refusal of the server (another installation's code, a
refused caller) also leaves the command to this process, and so does the first command when no server
runs yet: it starts one for the commands after it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

from lxcframe.installation import installation
from lxcframe.run_root import connect, peer_credentials

ENABLE_ENV = "LXCFRAME_SERVER"
#: What a terminal, a shell or a service manager sends a command: passed on to its worker.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH, signal.SIGALRM)
#: Verbs whose container processes take the caller's terminal when stdin is one (``start`` with -F).
_TERMINAL_VERBS = frozenset(("attach", "execute", "start", "copy"))
_ANSWER_SIZE = 4096

def served(verb: str | None, args: list[str]) -> bool:
    """Whether this command goes to the server."""
    if os.environ.get(ENABLE_ENV, "") == "0" or verb is None or verb == "console":
        return False
    if verb in _TERMINAL_VERBS and _isatty(0):
        if verb == "copy":  # an ephemeral copy runs in the foreground (or attaches) unless -d
            return not {"-e", "--ephemeral"} & set(args) or bool({"-d", "--daemon"} & set(args))
        return verb == "start" and not {"-F", "--foreground"} & set(args)
    return True


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def run(args: list[str], *, start_server: bool = True) -> int | None:
    """Run the command in a worker of the server; its exit status, or ``None`` when the server would
    not take it (nothing was done: the caller runs it itself). ``start_server``: with none listening,
    one is started for the commands after this one."""
    conn = _connect(start_server)
    if conn is None:
        return None
    with conn:
        pidfd = _submit(conn, args)
        if pidfd is None:
            return None
        try:
            return _wait(conn, pidfd)
        finally:
            os.close(pidfd)


def _connect(start: bool) -> socket.socket | None:
    """The server's connection; with no server listening, one is started for the next command (if
    ``start``) and this one runs in the caller's process (it would wait longer for a server to start
    than it takes)."""
    conn = connect()
    if conn is None and not start:
        return None
    if conn is None:
        from lxcframe.spawning import start_server

        start_server(wait=False)
        return None
    if not same_namespaces(conn):
        conn.close()
        return None
    return conn


#: The namespaces a command's worker must share with its client: it acts on the client's mounts, network,
#: processes and cgroups as the client itself would.
_SHARED_NAMESPACES = ("mnt", "net", "pid", "cgroup", "user", "ipc", "uts")


def same_namespaces(conn: socket.socket) -> bool:
    """Whether the server at the other end of ``conn`` is in this process's namespaces. A server started
    from another mount or network namespace (a run directory seen from both) would run the command in
    its own: it is not used."""
    pid = peer_credentials(conn)[0]
    if pid <= 0:  # not in this process's pid namespace
        return False
    try:
        return all(os.readlink(f"/proc/{pid}/ns/{kind}") == os.readlink(f"/proc/self/ns/{kind}")
                   for kind in _SHARED_NAMESPACES)
    except OSError:
        return False


def _submit(conn: socket.socket, args: list[str]) -> int | None:
    """Send the command; the worker's pidfd once the server took it, else ``None``."""
    umask = os.umask(0o077)
    os.umask(umask)
    passed = _passed_descriptors(args)
    if passed is None:
        return None
    try:
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    message = {"installation": installation(), "command": {
        "argv": args, "env": dict(os.environ), "umask": umask, "path0": sys.path[0] if sys.path else "",
        "pass_fds": passed,
    }}
    try:
        socket.send_fds(conn, [json.dumps(message, separators=(",", ":")).encode()], [0, 1, 2, cwd, *passed])
        answer, fds, _flags, _ = socket.recv_fds(conn, _ANSWER_SIZE, 1, socket.MSG_CMSG_CLOEXEC)
    except OSError:
        return None
    finally:
        os.close(cwd)
    if answer == b"ok" and len(fds) == 1:
        return fds[0]
    for fd in fds:
        os.close(fd)
    return None


def _passed_descriptors(args: list[str]) -> list[int] | None:
    """The descriptors the command passes on (``attach --pass-fd N``), to be sent with it; ``None`` when
    one is no open descriptor of this process's (the command then says so itself)."""
    passed: list[int] = []
    words = iter(args[: args.index("--")] if "--" in args else args)
    for word in words:
        value = next(words, "") if word == "--pass-fd" else word[10:] if word.startswith("--pass-fd=") else None
        if value is None:
            continue
        try:
            fd = int(value)
            os.fstat(fd)
        except (ValueError, OSError):
            return None
        if fd < 3 or fd in passed:
            return None
        passed.append(fd)
    return passed


def _wait(conn: socket.socket, pidfd: int) -> int:
    """Pass signals on to the worker until the server reports how it ended; that exit status."""

    def forward(signum: int, _frame: object) -> None:
        try:
            signal.pidfd_send_signal(pidfd, signum)
        except OSError:
            pass  # the worker has just ended: the report is on its way

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        report = conn.recv(_ANSWER_SIZE)  # retried after each forwarded signal (PEP 475)
    except OSError:
        report = b""
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    try:
        ended = json.loads(report)
    except ValueError:
        ended = None
    if not isinstance(ended, dict):
        sys.stderr.write("lxcframe: error: the server ended without reporting the command's end\n")
        return 1
    if isinstance(ended.get("signal"), int):
        return _as_killed_by(ended["signal"])
    code = ended.get("exit")
    return code if isinstance(code, int) else 1


def _as_killed_by(signum: int) -> int:
    """End as the worker did, killed by ``signum``, so that a shell sees the same status."""
    sys.stdout.flush()
    try:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    except (OSError, ValueError):
        pass
    return 128 + signum
