"""Getting a monitor running without ever forking a multi-threaded interpreter that goes on in Python.

* The caller is single-threaded (the CLI, most scripts): fork. A daemon monitor is double-forked and
  detached; a foreground one (``start -F``, ``execute``) runs right in the caller's process.
* The caller has other threads (an integrator's service): execute a fresh interpreter,
  ``python -m lxcframe.monitor``, which rebuilds the plan from the request and then does the same.

Either way the result of the start comes back over a pipe as one JSON record.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from typing import Any

from lxcframe.context import StartPlan
from lxcframe.errors import StageError

#: A detached monitor's umask, as LXC's (and the supervisor's monitors'): not whatever the caller had.
MONITOR_UMASK = 0o022


def single_threaded() -> bool:
    """True when this process has exactly one thread (Python's or any native library's)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _raise_for(result: dict[str, Any]) -> None:
    if result.get("ok"):
        return
    error = result.get("error") or {}
    message = error.get("message", "unknown error")
    if error.get("undo"):
        message += f" (and while unwinding: {error['undo']})"
    raise StageError(error.get("stage", "?"), error.get("plugin"), message, error.get("errno"))


def _notifier(fd: int) -> Any:
    def notify(record: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            os.write(fd, (json.dumps(record) + "\n").encode())
            os.close(fd)

    return notify


def _detach_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _supervisor_request(plan: StartPlan, disabled: tuple[str, ...]) -> dict[str, Any]:
    from lxcframe.log import HUB

    request = request_for(plan, disabled, detach=True)
    request["env"] = dict(os.environ)
    request["log"] = HUB.settings()
    return request


def request_for(plan: StartPlan, disabled: tuple[str, ...], detach: bool) -> dict[str, Any]:
    return {"name": plan.name, "lxcpath": plan.lxcpath, "argv": list(plan.argv), "mode": plan.mode,
            "disable": list(disabled), "detach": detach}


def start_daemon(plugins: Any, plan: StartPlan, disabled: tuple[str, ...]) -> int:
    """Start the container with a detached monitor; returns init's pid once RUNNING."""
    from lxcframe import supervisor

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    if not plugins.has_extras and supervisor.enabled() and supervisor.submit(
        dict(_supervisor_request(plan, disabled), fingerprint=supervisor.fingerprint(plugins)), write_end
    ):
        os.close(write_end)
    elif single_threaded():
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read_end)
                os.setsid()
                os.umask(MONITOR_UMASK)  # the caller's umask must not leak into the monitor
                if os.fork() != 0:
                    os._exit(0)
                from lxcframe.entering import close_descriptors

                close_descriptors({write_end})
                _detach_stdio()
                os.chdir("/")
                from lxcframe.monitor import run_monitor

                code = run_monitor(plugins, plan, _notifier(write_end))
            finally:
                os._exit(code)
        os.close(write_end)
        os.waitpid(pid, 0)
    else:
        _spawn_helper(plan, disabled, write_end, detach=True, stdio=subprocess.DEVNULL)
    result = _read_first(read_end)
    _raise_for(result)
    return int(result["init_pid"])


def run_foreground(plugins: Any, plan: StartPlan, disabled: tuple[str, ...],
                   started: Any = None) -> int:
    """Start the container and stay with it until it stops; returns init's (the command's) exit code.

    ``started`` is called once the start has succeeded or failed (to release the command lock while
    the container runs).
    """
    if single_threaded():
        from lxcframe.monitor import run_monitor

        outcome: dict[str, Any] = {}

        def notify(record: dict[str, Any]) -> None:
            outcome.update(record)
            if started is not None:
                started()

        code = run_monitor(plugins, plan, notify, monitor_is_caller=True)
        _raise_for(outcome)
        return code
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    process = _spawn_helper(plan, disabled, write_end, detach=False, stdio=None)
    result = _read_first(read_end)
    if started is not None:
        started()
    code = process.wait()
    _raise_for(result)
    return code


def _read_first(fd: int) -> dict[str, Any]:
    """The first record from the monitor, without waiting for the pipe to close."""
    with os.fdopen(fd, "rb") as pipe:
        line = pipe.readline()
    if not line:
        return {"ok": False, "error": {"stage": "monitor", "plugin": None,
                                       "message": "the monitor exited before reporting", "errno": None}}
    result: dict[str, Any] = json.loads(line)
    return result


def _spawn_helper(plan: StartPlan, disabled: tuple[str, ...], status_fd: int, *, detach: bool,
                  stdio: Any) -> subprocess.Popen[bytes]:
    request = request_for(plan, disabled, detach)
    request["status_fd"] = status_fd
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "lxcframe.monitor", json.dumps(request)],
            pass_fds=(status_fd,), stdin=stdio, stdout=stdio, stderr=stdio if detach else None,
            start_new_session=detach, umask=MONITOR_UMASK if detach else -1,
        )
    finally:
        os.close(status_fd)
    if detach:
        process.wait()  # the helper double-forks; its first process exits at once
    return process
