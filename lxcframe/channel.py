"""The monitor <-> init-child channel: a close-on-exec SEQPACKET socketpair carrying small JSON records.

Records: ``{"t": "barrier", "name": …}`` (child waits at a sync point), ``{"t": "go", "data": {…}}``
(monitor releases it), ``{"t": "log", "level": …, "event": …}``, and
``{"t": "error", "stage": …, "plugin": …, "errno": …, "message": …}``. EOF after the child's exec
means success: the socket is close-on-exec.
"""

from __future__ import annotations

import json
import socket
from typing import Any

MAX_RECORD = 64 * 1024


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # socketpair() sockets are inheritable=False (close-on-exec) in Python already.
        return cls(a), cls(b)

    def send(self, record: dict[str, Any]) -> None:
        self.sock.send(json.dumps(record, default=str).encode())

    def recv(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next record, or ``None`` at EOF (the peer exec'd or died)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(MAX_RECORD)
        finally:
            self.sock.settimeout(None)
        if not data:
            return None
        record: dict[str, Any] = json.loads(data)
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
        try:
            self._channel.send({"t": "log", "level": level, "event": event, "logger": self._logger, **fields})
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
