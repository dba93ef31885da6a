"""Where lxcframe keeps its runtime state and its server's socket: a module of its own, so that the command
line's thin client finds the socket without importing the state module (attrs and more)."""

from __future__ import annotations

import os
import socket

RUN_ROOT_ENV = "LXCFRAME_RUNDIR"
DEFAULT_RUN_ROOT = "/run/lxcframe"
SOCKET_NAME = "supervisor.sock"


def run_root() -> str:
    return os.environ.get(RUN_ROOT_ENV) or DEFAULT_RUN_ROOT


def socket_path() -> str:
    return os.path.join(run_root(), SOCKET_NAME)


def connect() -> socket.socket | None:
    """A connection to this run directory's server, or ``None`` when none listens."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        conn.connect(socket_path())
    except OSError:
        conn.close()
        return None
    return conn
