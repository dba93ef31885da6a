"""The monitor: the host-side owner of one running container.

It runs the host stages, forks the init child (in a new pid namespace), serves the child's barriers,
records state, waits for init to exit, then unwinds everything the start created. A failure at any
stage unwinds at once and is reported to whoever launched the monitor.

Also runnable as ``python -m lxcframe.monitor --plan-fd N --status-fd M`` (see :mod:`lxcframe.launcher`)
for callers that are multi-threaded and so must not fork a Python process that keeps running: it
runs the plan its caller built and sent (:mod:`lxcframe.start_request`), without reading the config.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Callable
from typing import Any

from lxcframe import driver, process_proof, start_abort, started_config, started_parts, syscalls
from lxcframe import state as st
from lxcframe.adoption import AdoptionError, AdoptionLink
from lxcframe.channel import Channel
from lxcframe.context import HostContext, StartPlan
from lxcframe.entering import close_descriptors, default_signals
from lxcframe.errors import StageError, UndoErrors
from lxcframe.log import HUB, bound_container, get_logger
from lxcframe.stage_runner import call_hook, describe
from lxcframe.stages import Barrier, Stage
from lxcframe.start_status import Notify, error_record


def _kill_and_reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _fork_init(plugins: Any, plan: StartPlan, host_end: Channel, child_end: Channel,
               adoption: AdoptionLink | None) -> tuple[int, int]:
    """Fork the init child; ``(pid, pidfd)``, the pidfd only when init is the adopting server's child."""
    from lxcframe.sealed_init import sealed_init_fd

    # Opened on the host before the child leaves it: the child cannot reach the host's files later.
    init_fd = sealed_init_fd() if plan.mode == "execute" else -1
    own_pidns = -1
    init_pidfd = -1
    # The process init's parent-death signal is about: this monitor, or the server that adopts init.
    monitor_pidfd = syscalls.pidfd_open(os.getpid() if adoption is None else adoption.server_pid)
    try:
        if plan.new_pidns and not plan.pidns_in_child:
            own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            syscalls.unshare(syscalls.CLONE_NEWPID)
        if adoption is None:
            pid = os.fork()
        else:
            pid, init_pidfd = syscalls.fork_as_sibling()
        if pid == 0:
            from lxcframe.child import run_child

            host_end.close()
            run_child(plugins, plan, child_end, monitor_pidfd, init_fd)
    finally:
        os.close(monitor_pidfd)
        if own_pidns >= 0:
            # Later forks (hooks after the container stopped) must land in the host's pid namespace.
            syscalls.setns(own_pidns, syscalls.CLONE_NEWPID)
            os.close(own_pidns)
    return pid, init_pidfd


class _MonitorCore:
    """The monitor's side of the start table (:mod:`lxcframe.stages`): its core steps, what a barrier
    means to it and the arguments its hooks get; :mod:`lxcframe.driver` walks the table through it."""

    def __init__(self, ctx: HostContext, notify: Notify, forward_signals: bool,
                 adoption: AdoptionLink | None = None, locks: list[int] | None = None) -> None:
        self.ctx = ctx
        self.plugins = ctx.plugins
        self.notify = notify
        self.forward_signals = forward_signals
        self.host_end, self.child_end = Channel.pair()
        self.pid = 0  # the forked child
        self.status = 0  # init's wait status, once it exited
        #: The server that adopts the container once it runs (see :mod:`lxcframe.adoption`); its child
        #: is ours to signal through ``child_pidfd``, not to wait for.
        self.adoption = adoption
        self.locks = locks or []
        self.child_pidfd = -1

    def arguments(self) -> dict[str, Any]:
        return {"ctx": self.ctx, "pid": self.ctx.init_pid or self.pid, "status": self.status}

    # --- core steps, in the table's order -----------------------------------------------------------

    def starting(self) -> None:
        _record_state(self.ctx, st.STARTING)
        started_parts.write(self.ctx.plan)  # what an attach applies, whatever the config says later
        started_config.write(self.ctx.plan)  # what get_running_config_item answers, likewise

    def fork(self) -> None:
        # What pre-start created (cgroups…) is on record before anything can kill this monitor.
        _record_state(self.ctx, st.STARTING)
        self.pid, self.child_pidfd = _fork_init(self.plugins, self.ctx.plan, self.host_end, self.child_end,
                                                self.adoption)
        self.ctx.child_pid = self.ctx.init_pid = self.pid
        self.child_end.close()
        if self.adoption is not None:
            self.adoption.born(self.pid)

    def reap_child(self) -> int | None:
        """Wait for the forked child to end; its wait status (``None`` if the adopting server, its
        parent, did not say)."""
        if self.adoption is None:
            try:
                return os.waitpid(self.pid, 0)[1]
            except ChildProcessError:
                return None
        select.select([self.child_pidfd], [], [])
        return self.adoption.exit_status(self.pid)

    def take_record(self, record: dict[str, Any]) -> object:
        """What every record of the child means on the way to a barrier: init's pid, a log line, a
        failure (raised as the stage's error). None once taken, else its kind, for the caller."""
        kind = record.get("t")
        if kind == "init":
            self.ctx.init_pid = int(record["pid"])
        elif kind == "log":
            _log_child_record(self.ctx, record)
        elif kind == "error":
            raise StageError(record["stage"], record.get("plugin"), record["message"], record.get("errno"))
        else:
            return kind
        return None

    def kill_started(self) -> None:
        """A start that failed: its init (when it is not the child itself) and its child killed, the
        channel to the child closed; the pids forgotten, so that the undo finds nothing of them."""
        ctx = self.ctx
        self.child_end.close()
        if ctx.init_pid and ctx.init_pid != ctx.child_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(ctx.init_pid, signal.SIGKILL)
        if ctx.child_pid:
            self.kill_child()
        ctx.init_pid = ctx.child_pid = None

    def kill_child(self) -> None:
        if self.adoption is None:
            _kill_and_reap(self.pid)
            return
        with contextlib.suppress(ProcessLookupError):
            syscalls.pidfd_send_signal(self.child_pidfd, signal.SIGKILL)
        self.reap_child()

    def running(self) -> None:
        ctx = self.ctx
        init_pid = ctx.init_pid or self.pid
        if ctx.plan.mode == "execute":
            _await_signal_collection(init_pid)
        _record_state(ctx, st.RUNNING)
        ctx.log.info("container running", init_pid=init_pid, command=" ".join(ctx.plan.argv))
        if self.forward_signals:
            _forward_signals_to(init_pid)
        start_abort.release()
        self.notify({"ok": True, "init_pid": init_pid})

    def adopt(self) -> None:
        """The server takes the container (and its locks): it is named the monitor from now on. Init is
        the server's child, not ours: if the server will not take it, the start fails (and is undone)."""
        assert self.adoption is not None
        ctx = self.ctx
        try:
            self.adoption.adopt(ctx.plan.name, ctx.plan.lxcpath, self.pid, ctx.init_pid or self.pid, self.locks)
        except OSError as err:
            raise AdoptionError(f"the server did not adopt the container: {err}") from None
        ctx.monitor_pid = self.adoption.server_pid
        ctx.adopted = True

    def hand_over(self) -> None:
        """Give the server what lives until init exits (the console, the plugins' kept descriptors)."""
        assert self.adoption is not None
        ctx = self.ctx
        console = ctx.served.get("console")
        try:
            self.adoption.hand_over(dict(ctx.kept), console.export() if console is not None else None)
        except (AdoptionError, OSError) as err:
            ctx.log.error("handing the running container over to the server failed", error=str(err))
        finally:
            if console is not None:
                console.forget()
            for fd in ctx.kept.values():
                os.close(fd)
            ctx.kept.clear()

    def wait(self) -> None:
        self.status = _wait_for(self.ctx, self.pid)
        self.ctx.init_pid = None
        _record_state(self.ctx, st.STOPPING)

    def unwind(self) -> None:
        try:
            self.ctx.undo.unwind()
        except UndoErrors as err:
            self.ctx.log.error("releasing host state failed", error=str(err))

    # --- barriers and failures after the start ------------------------------------------------------

    def wait_for(self, barrier: Barrier) -> None:
        """Serve the child's records until it reports ``barrier``; the exec handshake ends at the EOF
        after its ``exec`` record (the channel is close-on-exec)."""
        ctx, channel = self.ctx, self.host_end
        exec_announced = False
        while True:
            record = channel.recv()
            if record is None:
                if exec_announced:
                    return
                # Closed without reaching the barrier: the child died (its exit status says how).
                status = self.reap_child()
                ctx.init_pid = None
                raise StageError(barrier.name, None, f"init died during start ({status_text(status)})")
            kind = self.take_record(record)
            if kind is None:
                continue
            if not barrier.child_waits and kind == "exec":
                exec_announced = True
            elif barrier.child_waits and kind == "barrier" and record["name"] == barrier.name:
                return
            else:
                raise StageError(barrier.name, None, f"unexpected message from init: {record!r}")

    def release(self, barrier: Barrier) -> None:
        _release(self.ctx, self.host_end)

    def failed_after_start(self, stage: Stage, err: StageError) -> None:
        self.ctx.log.error(stage.logged_as, error=str(err))
        if stage.stops_on_failure:
            os.kill(self.ctx.init_pid or self.pid, signal.SIGKILL)

    def exit_code(self) -> int:
        code = os.waitstatus_to_exitcode(self.status)
        self.ctx.log.info("container stopped", status=status_text(self.status))
        return 128 - code if code < 0 else code


def _log_child_record(ctx: HostContext, record: dict[str, Any]) -> None:
    level = int(record.pop("level", 2))
    record.pop("t")
    event = record.pop("event", "")
    child_log = ctx.log.bind(logger=record.pop("logger", "child"))
    getattr(child_log, _LEVEL_METHOD[level])(event, **record)


def _release(ctx: HostContext, channel: Channel) -> None:
    """Let the child past its barrier, handing over the typed messages and descriptors gathered for it
    (:class:`lxcframe.handover.Handover`); our copies of the descriptors are closed once sent."""
    messages, fds = ctx.handover.drain()
    try:
        channel.send({"t": "go", "handover": messages}, fds)
    finally:
        for fd in fds.values():
            os.close(fd)


_LEVEL_METHOD = {0: "debug", 1: "debug", 2: "info", 3: "info", 4: "warning", 5: "error", 6: "critical",
                 7: "critical", 8: "critical"}


def status_text(status: int | None) -> str:
    if status is None:
        return "its end not reported"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _record_state(ctx: HostContext, state: str) -> None:
    init_pid = ctx.init_pid
    st.write_state(st.ContainerState(
        name=ctx.plan.name,
        lxcpath=ctx.plan.lxcpath,
        state=state,
        monitor_pid=ctx.monitor_pid,
        monitor_start=st.process_start_time(ctx.monitor_pid),
        init_pid=init_pid,
        init_start=st.process_start_time(init_pid) if init_pid else None,
        started_at=time.time(),
        mode=ctx.plan.mode,
        records=ctx.state_records.encoded(),
        adopted=ctx.adopted,
    ))


def run_monitor(plugins: Any, plan: StartPlan, notify: Notify, *, forward_signals: bool = True,
                monitor_is_caller: bool = False, adoption: AdoptionLink | None = None) -> int:
    """Start the container and supervise it until init exits; returns init's exit code.

    ``notify`` is called once: ``{"ok": True, "init_pid": N}`` when RUNNING, or
    ``{"ok": False, "error": {...}}`` when the start failed (everything already unwound).
    """
    config = plan.config
    with bound_container(plan.name), HUB.container_sink(
        plan.name, config.get("lxc.log.file"), config.get("lxc.log.level"), config.get("lxc.log.syslog")
    ):
        log = get_logger("monitor")
        ctx = HostContext(plan, plugins, log)
        ctx.monitor_is_caller = monitor_is_caller
        if not monitor_is_caller:
            # ps shows monitors by container, not as copies of whatever process forked them.
            syscalls.set_process_name(f"lxcf:{plan.name}")
            # Our own process: host hooks and scripts get default dispositions, not those of the
            # caller (or of whichever caller once started the supervisor).
            default_signals()
        monitor_lock = [st.hold_monitor_lock(plan.lxcpath, plan.name)]
        key_lock = st.key_lock_fd(plan.lxcpath, plan.name)
        core = _MonitorCore(ctx, notify, forward_signals, adoption,
                            monitor_lock + ([key_lock] if key_lock is not None else []))

        def finish() -> None:
            # Idempotent: a failed start finishes before it reports, so the caller sees no state left.
            if monitor_lock:
                os.close(monitor_lock.pop())
                if ctx.adopted:
                    st.forget_key_lock(plan.lxcpath, plan.name)  # the server holds it (and the runtime) now
                else:
                    st.remove_runtime(plan.lxcpath, plan.name, unless_locked=True)

        try:
            with start_abort.armed():  # stop of a STARTING container: SIGTERM unwinds the start
                return _supervise(core, finish)
        finally:
            finish()


def _supervise(core: _MonitorCore, finish: Callable[[], None]) -> int:
    ctx, notify = core.ctx, core.notify
    try:
        driver.walk_host_start(core)
        if core.adoption is not None:
            core.adopt()
        start_abort.done()
    except BaseException as err:
        start_abort.done()
        core.kill_started()
        error = error_record(err)
        try:
            ctx.undo.unwind()
        except UndoErrors as undo_err:
            error["undo"] = str(undo_err)
        ctx.log.error("start failed", **error)
        finish()
        notify({"ok": False, "error": error})
        start_abort.release()
        if isinstance(err, (StageError, OSError, Exception)):
            return 1
        raise
    finally:
        core.host_end.close()
    try:
        driver.walk_host_running(core)
    finally:
        start_abort.release()  # at the latest (the running step releases it once it forwards signals)
    if core.adoption is not None:
        # The server monitors the container from here: this worker leaves, and with it its pages.
        core.hand_over()
        return 0
    driver.walk_host_after_exit(core)
    return core.exit_code()


#: tini blocks every signal it collects (SIGTERM among them), then ignores SIGTTIN and SIGTTOU. While it
#: waits in sigtimedwait the kernel shows the waited signals unblocked, yet queues them: SIGTTOU ignored
#: tells that its mask is set.
_SIGTERM_BIT = 1 << (signal.SIGTERM - 1)
_SIGTTOU_BIT = 1 << (signal.SIGTTOU - 1)


def _await_signal_collection(pid: int, timeout: float = 2.0) -> None:
    """Return once the static init executed as ``pid`` collects signals (or ``timeout`` passed, or it ended).

    Why: the kernel drops a signal sent from outside a pid namespace to that namespace's init while
    the init neither handles nor blocks it. Right after execve, before tini's first sigprocmask, a
    stop or a forwarded SIGTERM would be lost and the container would run on; RUNNING is recorded
    (and signals forwarded) only after this.
    """
    deadline = time.monotonic() + timeout
    delay = 0.0002
    while time.monotonic() < deadline:
        fields = process_proof.status_fields(pid)
        if not fields:
            return  # ended
        if int(fields.get("SigBlk", "0"), 16) & _SIGTERM_BIT or int(fields.get("SigIgn", "0"), 16) & _SIGTTOU_BIT:
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def _forward_signals_to(pid: int) -> None:
    def forward(signum: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)


def _wait_for(ctx: HostContext, pid: int) -> int:
    _serve_until_exit(ctx, pid)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except ChildProcessError:
            return 0


def _watched(ctx: HostContext) -> dict[int, Callable[[], None]]:
    try:
        results = call_hook(ctx.plugins, "lxcframe_monitor_fds", ctx=ctx)
    except StageError as err:
        ctx.log.error("monitor descriptors", error=str(err))
        return {}
    return {fd: callback for result in results for fd, callback in result}


def _serve_until_exit(ctx: HostContext, pid: int) -> None:
    """Run the plugins' descriptor callbacks (``lxcframe_monitor_fds``) until ``pid`` exits.

    The monitor stays single-threaded: a pidfd of its child joins the poll set, so init's exit
    ends the loop. With nothing to watch it returns at once and the caller blocks in waitpid.
    """
    watched = _watched(ctx)
    if not watched:
        return
    try:
        pidfd = syscalls.pidfd_open(pid)
    except OSError:
        return
    try:
        while True:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            for fd in watched:
                poller.register(fd, select.POLLIN)
            for fd, _events in poller.poll():
                if fd == pidfd:
                    return
                # An earlier callback of this round may have closed this descriptor: ask again.
                callback = _watched(ctx).get(fd)
                if callback is None:
                    continue
                try:
                    callback()
                except Exception as err:
                    ctx.log.error("monitor descriptor callback failed", error=describe(err))
            watched = _watched(ctx)
            if not watched:
                return
    finally:
        os.close(pidfd)


def _helper_main(argv: list[str]) -> int:
    """``python -m lxcframe.monitor --plan-fd N --status-fd M``: the exec'd monitor of a multi-threaded
    caller, running the plan that caller built (read from descriptor N, a sealed memfd)."""
    import argparse

    from lxcframe import start_request, transfer
    from lxcframe.spawning import detach_stdio, read_descriptor
    from lxcframe.start_status import notifier

    parser = argparse.ArgumentParser(prog="python -m lxcframe.monitor")
    parser.add_argument("--plan-fd", type=int, required=True)
    parser.add_argument("--status-fd", type=int, required=True)
    parser.add_argument("--stderr-fd", type=int)  # the caller's stderr, until the start is reported
    options = parser.parse_args(argv)
    notify = notifier(options.status_fd)
    try:
        data = read_descriptor(options.plan_fd, start_request.MAX_REQUEST)
        request, plugins = start_request.decode(transfer.parse_json(data))
        request.log.apply()
    except Exception as err:
        notify({"ok": False, "error": error_record(err)})
        return 1
    if request.detach:
        # Popen already made us a session leader; the fork leaves the caller a child to reap at once.
        if os.fork() != 0:
            os._exit(0)
        close_descriptors({options.status_fd} if options.stderr_fd is None else {options.status_fd, options.stderr_fd})
        detach_stdio()
        os.chdir("/")
    request.log.forward(options.stderr_fd)  # after the fork: a forked process lets go of it
    return run_monitor(plugins, request.plan, notify)


if __name__ == "__main__":
    import sys

    raise SystemExit(_helper_main(sys.argv[1:]))
