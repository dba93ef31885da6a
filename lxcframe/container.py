"""The library API: ``Container(name, lxcpath)``, familiar to users of python3-lxc.

Methods raise :class:`lxcframe.errors.LxcframeError` subclasses with a one-line reason instead of
returning ``False``. Every method is safe to call from several threads at once; commands on one
container serialise on its lock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Sequence
from typing import Any

from lxcframe import ending, removal
from lxcframe import state as st
from lxcframe.config.model import ContainerConfig
from lxcframe.container_config import ConfigMethods
from lxcframe.container_copy import CopyMethods
from lxcframe.container_live import LiveCgroupMethods
from lxcframe.container_reboot import RebootMethods
from lxcframe.container_running import RunningMethods
from lxcframe.errors import ConfigError, ContainerError
from lxcframe.hostconfig import load_host_config
from lxcframe.log import bound_container, get_logger
from lxcframe.stage_runner import call_hook


def _check_name(name: str) -> str:
    # The name goes into paths, config lines and the host name unescaped: see lxcframe.names.
    from lxcframe.names import RULE, why_invalid

    why = why_invalid(name)
    if why is not None:
        raise ContainerError(f"invalid container name {name!r}: {why} (expected {RULE})")
    return name


def list_containers(lxcpath: str | None = None) -> list[str]:
    """Names of the containers defined under ``lxcpath`` (those with a config file)."""
    path = lxcpath or load_host_config().lxcpath
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isfile(os.path.join(path, n, "config")))


class Container(ConfigMethods, RunningMethods, LiveCgroupMethods, CopyMethods, RebootMethods):
    def __init__(
        self,
        name: str,
        lxcpath: str | None = None,
        *,
        plugins: Any = None,
        disable: Iterable[str] = (),
        config_path: str | None = None,
        server: bool | None = None,
    ) -> None:
        self.name = _check_name(name)
        #: Whether daemon starts and threaded attaches go through the warm server (``None``: unless
        #: ``LXCFRAME_SUPERVISOR=0``); ``False`` keeps everything in this process and its children.
        self.server = server
        self.lxcpath = os.path.abspath(lxcpath or load_host_config().lxcpath)
        self._disable = tuple(disable)
        self._plugins = plugins
        self._config_path = config_path
        #: The running container's netns reference, kept by get_ips while the same init lives.
        self._netns_ref: Any = None

    # --- plumbing ------------------------------------------------------------------------------

    @property
    def plugins(self) -> Any:
        if self._plugins is None:
            from lxcframe.plugin_manager import Plugins

            self._plugins = Plugins(self._disable)
        return self._plugins

    @property
    def container_dir(self) -> str:
        return os.path.join(self.lxcpath, self.name)

    @property
    def config_file_name(self) -> str:
        return self._config_path or os.path.join(self.container_dir, "config")

    @property
    def defined(self) -> bool:
        return os.path.isfile(self.config_file_name)

    def _log(self) -> Any:
        return get_logger("container")

    # --- state ---------------------------------------------------------------------------------

    def current_state(self) -> st.ContainerState | None:
        """The live state, or ``None`` when stopped. A dead monitor is detected, not trusted.

        The pids in ``state.json`` are believed only when proven (:mod:`lxcframe.process_proof`):
        a monitor lock held by a process that is not the recorded monitor, or a recorded init that
        lives but is not the container's, is an error, never a pid to act on.
        """
        recorded = st.read_state(self.lxcpath, self.name)
        if recorded is None:
            return None
        if st.monitor_alive(self.lxcpath, self.name):
            from lxcframe import process_proof

            try:
                process_proof.close(*self._proven_pidfds(recorded))
            except _MonitorGone:
                pass  # it is dying (its lock not yet released): as dead, with init proven without it
            else:
                if recorded.state == st.RUNNING and call_hook(
                    self.plugins, "lxcframe_is_frozen", firstresult=True, state=recorded
                ) == [True]:
                    return _evolve(recorded, state=st.FROZEN)
                return recorded
        # The monitor died. Its init may live on (lxc.monitor.signal.pdeath = 0).
        init = _open_pidfd(recorded.init_pid, recorded.init_start, pidns=recorded.init_pidns)
        if init is not None:
            os.close(init)
            return _evolve(recorded, state=st.RUNNING, monitor_pid=None)
        self._clean_stale_unless_busy()
        return None

    def _clean_stale_unless_busy(self) -> bool:
        """What a dead monitor left, released by whoever reads the state first (``state``, ``info``,
        ``ls``): its cgroups and records must not wait for the next start. Only when no command holds
        the container's lock: one that does (a start, a stop) cleans up itself."""
        try:
            lock = st.acquire_command_lock(self.lxcpath, self.name, timeout=0)
        except ContainerError:
            return False
        try:
            return self._clean_stale()
        except Exception as err:  # a read must still answer: the next stop or start tries again
            self._log().warning("cleaning up after a monitor that died failed", error=str(err))
            return False
        finally:
            st.release_command_lock(self.lxcpath, self.name, lock)

    def _proven_pidfds(self, recorded: st.ContainerState) -> tuple[int, int | None]:
        """Pidfds of the live monitor and (if it lives) init that ``recorded`` names, both proven.

        Raises when the monitor lock is held but the recorded monitor is not its holder, or when a
        live process with init's pid and start time is not this container's init: ``state.json``
        was forged or belongs to another container, and nobody is signalled.
        """
        from lxcframe import process_proof

        lock = os.path.join(st.runtime_dir(self.lxcpath, self.name), "monitor.lock")
        # An ending monitor closes its lock while a process it forked may hold a copy a moment longer.
        deadline = time.monotonic() + _ENDING_MONITOR_GRACE
        while True:
            monitor = process_proof.open_monitor(recorded.monitor_pid, recorded.monitor_start, lock)
            if monitor is not None or not recorded.monitor_pid or recorded.monitor_start is None:
                break
            if st.process_start_time(recorded.monitor_pid) != recorded.monitor_start \
                    or not st.monitor_alive(self.lxcpath, self.name):
                # Gone, or let go of its lock (a killed monitor's lock outlives it by a moment). Safe
                # even of a forged state: init is then proven by its namespaces alone.
                raise _MonitorGone(recorded.monitor_pid)
            if time.monotonic() >= deadline:
                break  # still inconsistent: forged
            time.sleep(0.01)
        if monitor is None:
            raise ContainerError(f"{self.name}: state.json names pid {recorded.monitor_pid} as the monitor, "
                                 f"but that process does not hold {lock}: not trusting the state file")
        init = None
        if recorded.init_pid:
            # An adopting server may have adopted init again after the one that was its parent died:
            # then only the namespace proofs hold, as after a dead monitor.
            init = _open_pidfd(recorded.init_pid, recorded.init_start,
                               monitor_pid=None if recorded.adopted else recorded.monitor_pid,
                               pidns=recorded.init_pidns)
            if init is None and st.process_start_time(recorded.init_pid) == recorded.init_start \
                    and not process_proof.exits_soon(recorded.init_pid):
                monitor_alive = process_proof.is_alive(monitor)
                os.close(monitor)
                if not monitor_alive:  # it died after it was proven: init was reparented meanwhile
                    raise _MonitorGone(recorded.monitor_pid)
                raise ContainerError(
                    f"{self.name}: state.json names pid {recorded.init_pid} as init, but that process is "
                    f"not pid 1 of the container's pid namespace below its monitor: not trusting the state file")
        return monitor, init

    @property
    def state(self) -> str:
        current = self.current_state()
        return st.STOPPED if current is None else current.state

    @property
    def running(self) -> bool:
        return self.state in (st.RUNNING, st.FROZEN, st.STARTING, st.STOPPING)

    @property
    def init_pid(self) -> int:
        current = self.current_state()
        return current.init_pid if current and current.init_pid else -1

    def _clean_stale(self) -> bool:
        """Release what a dead monitor left (its recorded host state) and drop its state file; True
        when there was such a thing to release."""
        recorded = st.read_state(self.lxcpath, self.name)
        if recorded is None or st.monitor_alive(self.lxcpath, self.name):
            return False
        init = _open_pidfd(recorded.init_pid, recorded.init_start, pidns=recorded.init_pidns)
        if init is not None:
            os.close(init)
            return False  # init still runs; stop will kill it first
        with bound_container(self.name):
            self._log().warning("cleaning up after a monitor that died", monitor_pid=recorded.monitor_pid)
            call_hook(self.plugins, "lxcframe_cleanup", state=recorded, ctx=None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(st.runtime_dir(self.lxcpath, self.name), "state.json"))
        return True

    # --- lifecycle -----------------------------------------------------------------------------

    def create(
        self,
        template: str = "busybox",
        args: Sequence[str] = (),
        *,
        rootfs: str | None = None,
        config: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Create the container from ``template``; a failure leaves nothing behind."""
        from lxcframe.create import create_container

        with bound_container(self.name), st.command_lock(self.lxcpath, self.name):
            create_container(self, template, tuple(args), rootfs, tuple(config))

    def _plan(self, argv: Sequence[str] | None, mode: str) -> Any:
        from lxcframe.planner import build_plan

        config = self.load_config()
        # The only place a start reads and validates the config: keys no enabled plugin applies stop
        # it in build_plan, here in the caller before anything is created; the monitor (forked, the
        # supervisor's, or the helper) runs this plan as it is.
        plan = build_plan(self.plugins, self.name, self.lxcpath, config, tuple(argv) if argv else None, mode)
        for item in config.unhandled:
            # The host opted out: said by the caller, where the user sees it (a daemon monitor's
            # stderr goes nowhere).
            self._log().warning("config key not handled", detail=item.describe())
        return plan

    def start(self, cmd: Sequence[str] | None = None, *, foreground: bool = False) -> int:
        """Start the container. Returns init's pid; with ``foreground`` waits and returns its exit code."""
        from lxcframe import launcher

        with bound_container(self.name):
            lock = st.acquire_command_lock(self.lxcpath, self.name)
            try:
                self._refuse_if_running()
                plan = self._plan(cmd, "foreground" if foreground else "daemon")
                if foreground:
                    return launcher.run_foreground(
                        self.plugins, plan,
                        started=lambda: st.release_command_lock(self.lxcpath, self.name, lock),
                    )
                return launcher.start_daemon(self.plugins, plan, server=self.server)
            finally:
                with contextlib.suppress(OSError):
                    st.release_command_lock(self.lxcpath, self.name, lock)

    def execute(self, cmd: Sequence[str] | None = None) -> int:
        """Run ``cmd`` as an application container under a minimal init; returns its exit status."""
        from lxcframe import launcher

        with bound_container(self.name):
            lock = st.acquire_command_lock(self.lxcpath, self.name)
            try:
                self._refuse_if_running()
                plan = self._plan(cmd, "execute")
                return launcher.run_foreground(
                    self.plugins, plan,
                    started=lambda: st.release_command_lock(self.lxcpath, self.name, lock),
                )
            finally:
                with contextlib.suppress(OSError):
                    st.release_command_lock(self.lxcpath, self.name, lock)

    def _refuse_if_running(self) -> None:
        self._clean_stale()
        current = self.current_state()
        if current is not None:
            raise ContainerError(f"{self.name}: already {current.state.lower()}")
        # A monitor started with another LXCFRAME_RUNDIR (or another spelling of the lxcpath)
        # keeps a state file we cannot see, but holds the container's key lock.
        if st.running_elsewhere(self.lxcpath, self.name):
            raise ContainerError(f"{self.name}: already running (its monitor uses another run directory "
                                 f"than {st.run_root()})")

    def stop(self, *, kill: bool = False, timeout: float = 60.0) -> None:
        """Ask init to halt (``lxc.signal.halt``), kill everything after ``timeout`` s; ``kill`` at once."""
        with bound_container(self.name):
            # A monitor that died with its init left the container stopped but not cleaned up: a stop
            # that releases what it left has done its work, as lxc-stop after a crashed monitor.
            if self._clean_stale_unless_busy():
                return
            if self._abort_start(kill, timeout):  # a start holds the command lock until it ends
                return
            with st.command_lock(self.lxcpath, self.name):
                self._stop_locked(kill, timeout)

    def shutdown(self, timeout: float = 60.0) -> bool:
        """Halt cleanly within ``timeout``; ``False`` (and still running) if it did not."""
        with bound_container(self.name), st.command_lock(self.lxcpath, self.name):
            return self._stop_locked(kill=False, timeout=timeout, escalate=False)

    def _stop_locked(self, kill: bool, timeout: float, escalate: bool = True) -> bool:
        from lxcframe import process_proof, syscalls
        from lxcframe.context import StopContext

        if self._clean_stale():  # as in stop(), for a monitor that died while this waited for the lock
            return True
        current = self.current_state()
        if current is None:
            raise ContainerError(f"{self.name}: {'not running' if self.defined else 'no such container'}")
        call_hook(self.plugins, "lxcframe_stop_requested",
                  ctx=StopContext(self.name, self.lxcpath, kill, timeout))
        try:
            config: ContainerConfig | None = self.load_config()
        except (ConfigError, ContainerError):
            config = None  # stopping must work even when the config was broken since the start
        halt = config.get("lxc.signal.halt", int(signal.SIGPWR)) if config else int(signal.SIGPWR)
        force = config.get("lxc.signal.stop", int(signal.SIGKILL)) if config else int(signal.SIGKILL)
        monitor, init = self._stop_targets(current)
        try:
            if current.state == st.STARTING and monitor is not None:
                # A monitor whose starter went away (the lock is ours): abort its start as stop() does.
                process_proof.close(monitor, init)
                monitor = init = None
                if self._abort_start(kill, timeout):
                    return True
                now = self.current_state()
                if now is None:
                    return True
                current = now
                monitor, init = self._stop_targets(current)
            if init is not None and not kill:
                if current.state == st.FROZEN:
                    call_hook(self.plugins, "lxcframe_freeze", firstresult=True, state=current, frozen=False)
                syscalls.pidfd_send_signal(init, halt)
                if ending.wait_ended(current, monitor, init, timeout):
                    return True
                if not escalate:
                    return False
            if init is not None:
                done = call_hook(self.plugins, "lxcframe_kill_all", firstresult=True,
                                 state=current, signal=force)
                if not done:
                    with contextlib.suppress(ProcessLookupError):
                        syscalls.pidfd_send_signal(init, force)
            ending.wait_ended(current, monitor, init, 30.0)
        finally:
            process_proof.close(monitor, init)
        self._clean_stale()
        return True

    def _stop_targets(self, current: st.ContainerState) -> tuple[int | None, int | None]:
        """Pidfds of the proven monitor and init to stop; when the monitor died, of init alone."""
        if current.monitor_pid is not None:
            with contextlib.suppress(_MonitorGone):
                return self._proven_pidfds(current)
        return None, _open_pidfd(current.init_pid, current.init_start, pidns=current.init_pidns)

    def _abort_start(self, kill: bool, timeout: float) -> bool:
        """Abort the start of a STARTING container, as ``lxc-stop -k`` does; True once it is undone.

        The start is still in the monitor's hands (a slow pre-start hook, a child between barriers)
        and its caller holds the command lock until it ends, so this runs without that lock: it only
        sends SIGTERM to the proven monitor, which unwinds everything it built and reports the
        failure to the caller (see :mod:`lxcframe.start_abort`). False when the container is not
        starting, or when its start finished meanwhile (then it is stopped as a running one).
        """
        from lxcframe import process_proof, syscalls

        current = self.current_state()
        if current is None or current.state != st.STARTING or current.monitor_pid is None:
            return False
        try:
            monitor, init = self._proven_pidfds(current)
        except _MonitorGone:
            return False  # nothing is starting any more: a stop of whatever is left follows
        process_proof.close(init)
        try:
            with contextlib.suppress(ProcessLookupError):
                syscalls.pidfd_send_signal(monitor, signal.SIGTERM)
            deadline = time.monotonic() + (30.0 if kill else max(timeout, 0))
            while True:
                if ending.wait_readable(monitor, min(0.1, max(deadline - time.monotonic(), 0))):
                    return True
                now = self.current_state()
                if now is None:
                    return True
                if now.state != st.STARTING:
                    return False  # the start won the race: the running container is stopped instead
                if time.monotonic() >= deadline:
                    raise ContainerError(f"{self.name}: its monitor (pid {current.monitor_pid}) did not "
                                         "leave the start it is in; not stopped")
        finally:
            process_proof.close(monitor)

    def wait(self, state: str, timeout: float = -1) -> bool:
        """Wait until the container is in ``state``, or in any of ``"RUNNING|FROZEN"`` as lxc-wait takes
        them; ``timeout`` < 0 waits forever."""
        wanted = {word.strip().upper() for word in state.split("|")}
        unknown = sorted(wanted - set(st.STATES))
        if unknown:
            raise ContainerError(f"unknown state {unknown[0]!r} in {state!r} "
                                 f"(expected one of {', '.join(st.STATES)}, or several joined by '|')")
        deadline = None if timeout < 0 else time.monotonic() + timeout
        while self.state not in wanted:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def destroy(self, *, force: bool = False) -> None:
        """Remove the container; refuses a running one unless ``force`` (then it is killed first)."""
        with bound_container(self.name), st.command_lock(self.lxcpath, self.name):
            if not self.defined:
                raise ContainerError(f"{self.name}: no such container")
            self._refuse_if_snapshots()
            if self.current_state() is not None:
                if not force:
                    raise ContainerError(f"{self.name}: is running (stop it first, or destroy -f)")
                self._stop_locked(kill=True, timeout=0)
            self._clean_stale()
            try:
                config: ContainerConfig | None = self.load_config()
            except ConfigError:
                config = None  # a broken config must not make a container impossible to remove
            removal.remove_container(self.name, self.lxcpath, self.plugins, config, self._log())


def _evolve(recorded: st.ContainerState, **changes: Any) -> st.ContainerState:
    import attrs

    return attrs.evolve(recorded, **changes)


_ENDING_MONITOR_GRACE = 2.0  # seconds a recorded monitor may live without its lock that another holds


class _MonitorGone(Exception):
    """The monitor a state file names has exited (its lock may still be held for a moment)."""


def _open_pidfd(pid: int | None, start: int | None, *, monitor_pid: int | None = None,
                pidns: int | None = None) -> int | None:
    """A pidfd of the container's init named by the state, or ``None`` when that pid is not it.

    Never a pidfd of a stranger: the pidfd is opened first, then the process is proven to be pid 1
    of a pid namespace not ours (the recorded one), below ``monitor_pid`` when the monitor lives.
    """
    from lxcframe import process_proof

    return process_proof.open_init(pid, start, monitor_pid, pidns)
