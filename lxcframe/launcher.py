"""Getting a monitor running without ever forking a multi-threaded interpreter that goes on in Python.

* The caller is single-threaded (the CLI, most scripts): fork. A daemon monitor is double-forked and
  detached; a foreground one (``start -F``, ``execute``) runs right in the caller's process.
* The caller has other threads (an integrator's service): execute a fresh interpreter,
  ``python -m lxcframe.monitor``, which reads the plan the caller built from a sealed memfd
  (:mod:`lxcframe.start_request`) and then does the same.
* A daemon start goes to the warm supervisor first (:mod:`lxcframe.supervisor`), with the same
  request over its socket.

Either way the plan is the one the caller built, and the result of the start comes back over a
pipe as one JSON record (:mod:`lxcframe.start_status`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from lxcframe import start_status, transfer
from lxcframe.context import StartPlan
from lxcframe.spawning import (
    MONITOR_UMASK,
    detach_stdio,
    interpreter_environment,
    sealed_memfd,
    single_threaded,
)
from lxcframe.start_request import StartRequest


def start_daemon(plugins: Any, plan: StartPlan, *, server: bool | None = None) -> int:
    """Start the container with a detached monitor; returns init's pid once RUNNING.

    Until then the monitor's log lines reach this process's stderr as they would a foreground start's:
    the monitor gets a duplicate of it and closes that before it reports (:mod:`lxcframe.start_status`).
    """
    from lxcframe.log import HUB

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    stderr = HUB.caller_stream()
    try:
        _launch_daemon(plugins, plan, write_end, stderr, server)
    finally:
        if stderr is not None:
            os.close(stderr)  # the monitor has its own copy (or none is running)
    result = start_status.read_first(read_end)
    start_status.raise_for(result)
    return int(result["init_pid"])


def _launch_daemon(plugins: Any, plan: StartPlan, write_end: int, stderr: int | None, server: bool | None) -> None:
    """Get a detached monitor running ``plan``, reporting on ``write_end`` (closed here) and logging
    to ``stderr`` meanwhile."""
    from lxcframe import supervisor_client as supervisor

    if not plugins.has_extras and supervisor.enabled(server) and supervisor.submit(
        StartRequest.for_plan(plan, plugins, detach=True), supervisor.fingerprint(plugins), write_end, stderr
    ):
        os.close(write_end)
    elif single_threaded():
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setsid()
                os.umask(MONITOR_UMASK)  # the caller's umask must not leak into the monitor
                if os.fork() != 0:
                    os._exit(0)
                from lxcframe.entering import close_descriptors
                from lxcframe.log import HUB

                close_descriptors({write_end} if stderr is None else {write_end, stderr})
                detach_stdio()
                os.chdir("/")
                if stderr is not None:
                    settings = HUB.settings()
                    HUB.forward_to_caller(stderr, settings["level"], settings["fmt"])
                from lxcframe.monitor import run_monitor

                code = run_monitor(plugins, plan, start_status.notifier(write_end))
            finally:
                os._exit(code)
        os.close(write_end)
        os.waitpid(pid, 0)
    else:
        _spawn_helper(StartRequest.for_plan(plan, plugins, detach=True), write_end, stdio=subprocess.DEVNULL,
                      stderr_fd=stderr)


def run_foreground(plugins: Any, plan: StartPlan, started: Any = None) -> int:
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
        start_status.raise_for(outcome)
        return code
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    process = _spawn_helper(StartRequest.for_plan(plan, plugins, detach=False), write_end, stdio=None)
    result = start_status.read_first(read_end)
    if started is not None:
        started()
    code = process.wait()
    start_status.raise_for(result)
    return code


def _spawn_helper(request: StartRequest, status_fd: int, *, stdio: Any,
                  stderr_fd: int | None = None) -> subprocess.Popen[bytes]:
    """``python -m lxcframe.monitor --plan-fd N --status-fd M [--stderr-fd E]``: the plan in a sealed
    memfd, the environment only what the runtime reads (never the caller's whole environment), and
    the caller's stderr to log to until the start is reported (a detached helper's own is /dev/null)."""
    try:
        plan_fd = sealed_memfd("lxcframe-plan", transfer.dumps(request))
    except BaseException:
        os.close(status_fd)
        raise
    argv = [sys.executable, "-m", "lxcframe.monitor", "--plan-fd", str(plan_fd), "--status-fd", str(status_fd)]
    passed: tuple[int, ...] = (status_fd, plan_fd)
    if stderr_fd is not None:
        argv += ["--stderr-fd", str(stderr_fd)]
        passed += (stderr_fd,)
    try:
        process = subprocess.Popen(
            argv,
            pass_fds=passed, stdin=stdio, stdout=stdio, stderr=stdio if request.detach else None,
            start_new_session=request.detach, umask=MONITOR_UMASK if request.detach else -1,
            env=interpreter_environment(dict(request.env)), cwd="/",
        )
    finally:
        os.close(status_fd)
        os.close(plan_fd)
    if request.detach:
        process.wait()  # the helper double-forks; its first process exits at once
    return process
