"""The monitor <-> init-child channel: a close-on-exec SEQPACKET socketpair carrying small JSON records.

Records: ``{"t": "barrier", "name": …}`` (child waits at a sync point), ``{"t": "go", "handover": {…}}``
(monitor releases it), ``{"t": "log", "level": …, "event": …, "plugin": …}`` (``plugin``: whose hook
implementation logged it, when one did; the monitor logs it as ``plugin=``, as a host-side line), and
``{"t": "error", "stage": …, "plugin": …, "errno": …, "message": …}``. EOF after the child's exec
means success: the socket is close-on-exec.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from lxcframe.log import current_plugin

MAX_RECORD = 64 * 1024


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # socketpair() sockets are inheritable=False (close-on-exec) in Python already.
        return cls(a), cls(b)

    def send(self, record: dict[str, Any], fds: dict[str, int] | None = None) -> None:
        """Send one record; ``fds`` (name -> descriptor) travel alongside as SCM_RIGHTS."""
        if fds:
            record = {**record, "_fd_names": list(fds)}
            socket.send_fds(self.sock, [json.dumps(record, default=str).encode()], list(fds.values()),
                            socket.MSG_NOSIGNAL)
        else:
            # A peer gone is an EPIPE error, not a SIGPIPE: the child runs with default dispositions,
            # and one whose monitor left on purpose (lxc.monitor.signal.pdeath = 0) must live on.
            self.sock.send(json.dumps(record, default=str).encode(), socket.MSG_NOSIGNAL)

    def recv(self, timeout: float | None = None, max_fds: int = 8) -> dict[str, Any] | None:
        """The next record, or ``None`` at EOF (the peer exec'd or died).

        Descriptors that came with it (at most ``max_fds``) are in ``record["_fds"]`` (name -> descriptor).
        """
        self.sock.settimeout(timeout)
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_RECORD, max_fds)
        finally:
            self.sock.settimeout(None)
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        record: dict[str, Any] = json.loads(data)
        names = record.pop("_fd_names", [])
        if fds or names:
            record["_fds"] = dict(zip(names, fds, strict=True))
        return record

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


class ChildLog:
    """The child's logger: lines cross to the monitor, which logs them with the container bound."""

    def __init__(self, channel: Channel, logger: str = "child") -> None:
        self._channel = channel
        self._logger = logger

    def _send(self, level: int, event: str, **fields: Any) -> None:
        record = {"t": "log", "level": level, "event": event, "logger": self._logger, **fields}
        # As on the host side (log._add_container): a line logged by a hook implementation names its
        # plugin, unless the line names one itself (a trace line names the implementation it times).
        plugin = current_plugin.get()
        if plugin is not None:
            record.setdefault("plugin", plugin)
        try:
            self._channel.send(record)
        except OSError:
            pass  # the monitor is gone; the child will be killed by its pdeath signal

    def trace(self, event: str, **fields: Any) -> None:
        self._send(0, event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        self._send(1, event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._send(2, event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._send(4, event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._send(5, event, **fields)
