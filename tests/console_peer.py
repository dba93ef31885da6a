"""The other process of ``tests/test_console_service.py``: it restores an exported console and serves it.

``python -m tests.console_peer FD``: FD is a SEQPACKET socket on which one export arrives (its JSON data
with every descriptor as SCM_RIGHTS). Once the server is restored the peer answers ``{"ttys": [...]}``
and serves the console from its own poll loop, as a long-lived server would, until ``close`` arrives
(or the socket ends): then it closes the server, answers ``{"closed": true}`` and exits. It is a fresh
interpreter, not a fork, so the restored server can only work with what crossed the socket.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
from typing import Any

#: The kernel's limit of descriptors in one SCM_RIGHTS message (SCM_MAX_FD).
MAX_FDS = 253
MAX_DATA = 1 << 20


def send_export(sock: socket.socket, data: dict[str, Any], fds: list[int]) -> None:
    socket.send_fds(sock, [json.dumps(data).encode()], fds)


def receive_export(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    raw, fds, flags, _ = socket.recv_fds(sock, MAX_DATA, MAX_FDS)
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            os.close(fd)
        raise RuntimeError(f"the export arrived truncated (flags {flags:#x})")
    data: dict[str, Any] = json.loads(raw)
    return data, fds


def serve(sock: socket.socket) -> None:
    from lxcframe.console_service import ConsoleServer
    from lxcframe.log import get_logger

    data, fds = receive_export(sock)
    server = ConsoleServer.restore(data, fds, get_logger("console-peer"))
    sock.send(json.dumps({"ttys": sorted(server.ttys)}).encode())
    while True:
        watched = dict(server.watch())
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        for fd in watched:
            poller.register(fd, select.POLLIN)
        # One event per round: a callback may close what a later event of the same round names.
        fd, _events = poller.poll()[0]
        if fd != sock.fileno():
            watched[fd]()
        elif sock.recv(64) in (b"close", b""):
            server.close()
            sock.send(json.dumps({"closed": True}).encode())
            return


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
