"""Where lxcframe keeps its runtime state and its server's socket: a module of its own, so that the command
line's thin client finds the socket without importing the state module (attrs and more).

Root's is ``/run/lxcframe``; another user's, as LXC's ``get_rundir``, is below ``$XDG_RUNTIME_DIR``, else
below ``~/.cache`` (a user cannot create anything in ``/run``).
"""

from __future__ import annotations

import os
import socket
import struct

RUN_ROOT_ENV = "LXCFRAME_RUNDIR"
DEFAULT_RUN_ROOT = "/run/lxcframe"
SOCKET_NAME = "supervisor.sock"


def user_runtime_dir() -> str:
    """A non-root caller's own runtime directory for lxcframe: ``$XDG_RUNTIME_DIR/lxcframe``, else
    ``$HOME/.cache/lxcframe/run`` (LXC's fallback is ``~/.cache/lxc/run``)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "lxcframe")
    return os.path.join(os.path.expanduser("~"), ".cache", "lxcframe", "run")


def run_root() -> str:
    override = os.environ.get(RUN_ROOT_ENV)
    if override:
        return override
    return DEFAULT_RUN_ROOT if os.geteuid() == 0 else user_runtime_dir()


def socket_path() -> str:
    return os.path.join(run_root(), SOCKET_NAME)


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """``(pid, uid, gid)`` of the process at the other end of the unix socket ``conn`` (``SO_PEERCRED``;
    a pid of 0 is one outside this process's pid namespace)."""
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid, uid, gid


def listening_pid(path: str) -> int | None:
    """The pid of the server listening on the socket at ``path``, or ``None`` when none listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC) as probe:
        try:
            probe.connect(path)
        except OSError:
            return None
        return peer_credentials(probe)[0]


def connect() -> socket.socket | None:
    """A connection to this run directory's server, or ``None`` when none listens."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        conn.connect(socket_path())
    except OSError:
        conn.close()
        return None
    return conn
