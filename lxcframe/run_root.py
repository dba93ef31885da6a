"""Where lxcframe keeps its runtime state and its server's socket: a module of its own, so that the command
line's thin client finds the socket without importing the state module (attrs and more)."""

from __future__ import annotations

import os

RUN_ROOT_ENV = "LXCFRAME_RUNDIR"
DEFAULT_RUN_ROOT = "/run/lxcframe"
SOCKET_NAME = "supervisor.sock"


def run_root() -> str:
    return os.environ.get(RUN_ROOT_ENV) or DEFAULT_RUN_ROOT


def socket_path() -> str:
    return os.path.join(run_root(), SOCKET_NAME)
