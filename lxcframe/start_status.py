"""How a monitor tells whoever launched it how its start went: one JSON record on a pipe.

``{"ok": true, "init_pid": N}`` once the container runs, or ``{"ok": false, "error": {...}}`` once a
failed start is entirely undone. The caller raises the error as the :class:`StageError` it was.

Until then a monitor that is not the caller's own process writes its log lines to the caller's stderr
too (:meth:`lxcframe.log.LogHub.forward_to_caller`); the record ends that: the monitor closes the
caller's stderr before it writes the record, so no line of it reaches the caller after ``start``
returned, and no descriptor of the caller's stays with a container's monitor.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

from lxcframe.errors import StageError
from lxcframe.log import HUB
from lxcframe.stage_runner import describe

Notify = Callable[[dict[str, Any]], None]


def notifier(fd: int) -> Notify:
    """Write the one record to ``fd`` and close it, also when the caller has gone (EPIPE); a second
    call does nothing (by then the descriptor's number may name another file). The caller's stderr is
    let go of first."""
    sent = False

    def notify(record: dict[str, Any]) -> None:
        nonlocal sent
        HUB.stop_forwarding()
        if sent:
            return
        sent = True
        try:
            with contextlib.suppress(OSError):
                os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)

    return notify


def error_record(err: BaseException) -> dict[str, Any]:
    if isinstance(err, StageError):
        return {"stage": err.stage, "plugin": err.plugin, "message": err.message, "errno": err.errno}
    return {"stage": "monitor", "plugin": None, "message": describe(err),
            "errno": err.errno if isinstance(err, OSError) else None}


def read_first(fd: int) -> dict[str, Any]:
    """The first record from the monitor, without waiting for the pipe to close."""
    with os.fdopen(fd, "rb") as pipe:
        line = pipe.readline()
    if not line:
        return {"ok": False, "error": {"stage": "monitor", "plugin": None,
                                       "message": "the monitor exited before reporting", "errno": None}}
    result: dict[str, Any] = json.loads(line)
    return result


def raise_for(result: dict[str, Any]) -> None:
    if result.get("ok"):
        return
    error = result.get("error") or {}
    message = error.get("message", "unknown error")
    if error.get("undo"):
        message += f" (and while unwinding: {error['undo']})"
    raise StageError(error.get("stage", "?"), error.get("plugin"), message, error.get("errno"))
