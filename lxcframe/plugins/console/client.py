"""Talking to a running container's monitor about its console (library and CLI side)."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from lxcframe import state as st
from lxcframe.channel import Channel
from lxcframe.console_service import socket_address
from lxcframe.errors import ContainerError


def connect(lxcpath: str, name: str) -> Channel:
    try:
        dir_fd = os.open(st.runtime_dir(lxcpath, name), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ContainerError(f"{name}: not running") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(socket_address(dir_fd))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise ContainerError(f"{name}: has no console (not running, lxc.console.path = none, "
                             "or started without the console plugin)") from None
    finally:
        os.close(dir_fd)
    return Channel(sock)


def request(channel: Channel, record: dict[str, Any], timeout: float = 10.0) -> tuple[dict[str, Any], dict[str, int]]:
    channel.send(record)
    reply = channel.recv(timeout=timeout)
    if reply is None:
        raise ContainerError("the monitor closed the console connection")
    fds: dict[str, int] = reply.pop("_fds", {})
    if not reply.get("ok"):
        for fd in fds.values():
            os.close(fd)
        raise ContainerError(str(reply.get("error", "console request refused")))
    return reply, fds


def open_tty(lxcpath: str, name: str, ttynum: int, size: tuple[int, int] | None = None) -> tuple[Channel, int, int]:
    """Reserve a tty (``-1``: the first free one, ``0``: the console); returns (holder, fd, tty number).

    The tty stays reserved while ``holder`` is open.
    """
    channel = connect(lxcpath, name)
    try:
        rows, cols = size or (0, 0)
        reply, fds = request(channel, {"op": "tty", "tty": ttynum, "rows": rows, "cols": cols})
    except BaseException:
        channel.close()
        raise
    return channel, fds["tty"], int(reply["tty"])


def read_log(lxcpath: str, name: str, clear: bool) -> str:
    channel = connect(lxcpath, name)
    try:
        _, fds = request(channel, {"op": "log", "clear": clear})
    finally:
        channel.close()
    fd = fds["log"]
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return b"".join(chunks).decode(errors="replace")
