"""``create``: the container set up to its last step, its init waiting on the exec fifo, this process gone.

This process is the monitor of the start (:mod:`lxcframe.monitor`'s core walks the start table): it
runs the host stages and forks init. Init walks its side up to the end of the ``exec`` stage, where
the :class:`ExecFifo` plugin (last in that stage) stops it: it opens ``<dir>/exec.fifo`` for writing,
which blocks until ``start`` opens it for reading, as runc's init does. Before it blocks it says so on
the start channel; then the walk ends here (the exec barrier is not waited for), the state is written
and this process exits without undoing anything: what the start made on the host is in lxcframe's
state records, which ``delete`` releases (:mod:`lxcframe.oci.ending`).

The bundle's hooks go with the start through a third in-process plugin (:class:`OciHooks`): init asks
this process for ``prestart`` and ``createRuntime`` from its ``pre-pivot`` stage (the request is one
of init's records, taken on the way to the next barrier), runs ``createContainer`` itself, and
``startContainer`` once ``start`` opened the fifo.

Init outlives this process: the fifo plugin clears the parent-death signal before it blocks and the
bundle's config says ``lxc.monitor.signal.pdeath = 0``, so init is reparented to the caller's
subreaper (conmon, the containerd shim), which reaps its exit status.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from lxcframe import driver, syscalls
from lxcframe import state as st
from lxcframe.context import ChildContext, HostContext, StartPlan
from lxcframe.errors import StageError
from lxcframe.hooks import hookimpl
from lxcframe.log import bound_container, get_logger
from lxcframe.monitor import _MonitorCore, _record_state, status_text
from lxcframe.oci.oci_hooks import BundleHooks, OciHooks
from lxcframe.oci.oci_hooks import save as save_hooks
from lxcframe.oci.store import OciError, OciState, Store
from lxcframe.stages import Barrier

#: The event init logs just before it blocks on the exec fifo.
READY = "waiting on the exec fifo"


class ExecFifo:
    """An in-process plugin of ``create``: init waits on the exec fifo, last in the ``exec`` stage.

    ``fifo_fd`` is an ``O_PATH`` descriptor of the fifo opened by ``create`` before the fork: after the
    pivot the host's path is out of reach, and ``/proc/self/fd/N`` opens the fifo itself again.
    """

    def __init__(self, fifo_fd: int, hooks: OciHooks) -> None:
        self.fifo_fd = fifo_fd
        #: Runs startContainer once ``start`` opened the fifo, and says on it how they went.
        self.hooks = hooks

    @hookimpl(trylast=True)
    def lxcframe_child_pre_exec(self, ctx: ChildContext) -> None:
        _check_command(ctx.plan)
        # create exits while we wait: nothing may kill us with it (final-ids arms the config's
        # lxc.monitor.signal.pdeath again, 0 in a bundle's config).
        syscalls.set_pdeathsig(0)
        ctx.log.info(READY)
        try:
            fd = os.open(f"/proc/self/fd/{self.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise OSError(2, "/proc/self/fd: no such file or directory (the bundle mounts no /proc, "
                             "through which init reopens the exec fifo)") from None
        try:
            self.hooks.start_container(ctx, fd)
        finally:
            os.close(fd)
            os.close(self.fifo_fd)


def _check_command(plan: StartPlan) -> None:
    """The payload's command, looked up now rather than after ``start``: podman maps these words to its
    exit codes 127 and 126."""
    from lxcframe.entering import resolve_command

    env = dict(item.partition("=")[::2] for item in plan.env)
    command = plan.argv[0]
    if resolve_command(command, env) is not None:
        return
    if "/" not in command:
        raise OSError(2, f"exec: {command!r}: executable file not found in $PATH")
    if os.path.exists(command):
        raise OSError(13, f"exec: {command!r}: permission denied")
    raise OSError(2, f"exec: {command!r}: no such file or directory")


class _CreateCore(_MonitorCore):
    """The monitor's core, except that the start ends when init waits on the fifo, not at its exec, and
    that init's request for the runtime's hooks is served on the way."""

    def __init__(self, ctx: HostContext, hooks: OciHooks) -> None:
        super().__init__(ctx, lambda _record: None, forward_signals=False)
        self.hooks = hooks

    def take_record(self, record: dict[str, Any]) -> object:
        if self.hooks.take_request(self.ctx, record):
            return None
        return super().take_record(record)

    def wait_for(self, barrier: Barrier) -> None:
        if barrier.child_waits:
            super().wait_for(barrier)
            return
        ctx = self.ctx
        while True:
            record = self.host_end.recv()
            if record is None:
                status = self.reap_child()
                ctx.init_pid = None
                raise StageError(barrier.name, None, f"init died during start ({status_text(status)})")
            if record.get("t") == "log" and record.get("event") == READY:
                return
            self.take_record(record)


def create_container(store: Store, container_id: str, plugins: Any, plan: StartPlan, bundle: str,
                     annotations: dict[str, str], fifo_fd: int, hooks: OciHooks) -> OciState:
    """Run the start up to init waiting on the fifo; the state written. A failure unwinds the start and
    raises :class:`OciError`."""
    with bound_container(plan.name):
        log = get_logger("monitor")
        ctx = HostContext(plan, plugins, log)
        ctx.monitor_is_caller = True  # the cgroup plugin leaves this process where it is
        monitor_lock = st.hold_monitor_lock(plan.lxcpath, plan.name)
        core = _CreateCore(ctx, hooks)
        try:
            driver.walk_host_start(core)
        except BaseException as err:
            _unwind(core, ctx)
            os.close(monitor_lock)
            st.remove_runtime(plan.lxcpath, plan.name)
            message = err.message if isinstance(err, StageError) else str(err)
            raise OciError(f"container create failed: {message}") from err
        finally:
            core.host_end.close()
            os.close(fifo_fd)
            hooks.close()
        pid = ctx.init_pid or core.pid
        _record_state(ctx, st.RUNNING)
        start = st.process_start_time(pid)
        state = OciState(id=container_id, pid=pid, pid_start=start or 0, bundle=bundle, rootfs=plan.rootfs,
                         created=_now(), annotations=annotations)
        store.write(state)
        # The lock goes with this process; delete takes the container from here.
        os.close(monitor_lock)
        return state


def _unwind(core: _MonitorCore, ctx: HostContext) -> None:
    core.kill_started()
    with contextlib.suppress(Exception):
        ctx.undo.unwind()


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


#: What this mode needs of every container, after the bundle's lines: init outlives ``create``, and
#: no console of lxcframe's (its server would live in ``create``; the terminal is --console-socket's).
RUNTIME_LINES = (("lxc.monitor.signal.pdeath", "0"), ("lxc.console.path", "none"))


def container_config(bundle_dir: str, container_id: str, state_dir: str, plugins: Any) -> tuple[Any, Any]:
    """The bundle as the enabled plugins read it (hook ``lxcframe_config_source``: plugin ``oci``, unless
    another plugin reads this path first), and its config: the host's ``default_config`` lines first (as
    every new container's config starts with them), then the source's, then :data:`RUNTIME_LINES`."""
    from lxcframe.config.model import build_config
    from lxcframe.config.parser import RawEntry, read_entries
    from lxcframe.config.source import read_source

    source = read_source(plugins, bundle_dir, container_id, state_dir, what="the bundle", reader="oci")
    defaults = list(read_entries(plugins.host.default_config)) if plugins.host.default_config else []
    runtime = [RawEntry(key, value, "<lxcframe-oci>", n) for n, (key, value) in enumerate(RUNTIME_LINES, 1)]
    return source, build_config([*defaults, *source.entries, *runtime], plugins.key_registry(), source.path)


def create(store: Store, container_id: str, bundle_dir: str, pid_file: str | None,
           console_socket: str | None) -> OciState:
    """``create``: make the container's directory, run the start to the fifo, write the pid file."""
    from lxcframe.oci.ending import save_request
    from lxcframe.planner import build_plan
    from lxcframe.plugin_manager import Plugins
    from lxcframe.start_request import StartRequest

    directory = store.make(container_id)
    try:
        fifo_fd = os.open(os.path.join(directory, "exec.fifo"), os.O_PATH | os.O_CLOEXEC)
        hooks = OciHooks(container_id)
        extra: list[tuple[str, object]] = [("oci-exec-fifo", ExecFifo(fifo_fd, hooks)), ("oci-hooks", hooks)]
        console = None
        if console_socket is not None:
            from lxcframe.oci.console import ConsoleSocket, connect

            console = connect(console_socket)
            terminal = ConsoleSocket(console)
            extra.append(("oci-console", terminal))
        plugins = Plugins(extra=extra)
        for name, _plugin in extra:
            if not plugins.is_enabled(name):
                reason = next((r.reason for r in plugins.records() if r.name == name), "")
                raise OciError(f"the runtime's plugin {name} is not enabled: {reason}")
        bundle, config = container_config(bundle_dir, container_id, directory, plugins)
        if console is not None:
            terminal.size = getattr(bundle, "console_size", None)
        if bundle.terminal and console_socket is None:
            raise OciError("process.terminal is set: --console-socket is required")
        if console_socket is not None and not bundle.terminal:
            raise OciError("--console-socket given but process.terminal is not set")
        if getattr(bundle, "umask", None) is not None:
            os.umask(bundle.umask)  # process.user.umask: init inherits it through the fork
        _give_fifo_to_container_root(directory, config)
        plan = build_plan(plugins, container_id, store.root, config, bundle.args, "foreground")
        save_request(directory, StartRequest.for_plan(plan, plugins, detach=False))
        bundle_hooks = bundle.hooks if bundle.hooks is not None else BundleHooks()
        hooks.configure(bundle_hooks, bundle.directory, dict(bundle.annotations))
        save_hooks(directory, bundle_hooks)
        try:
            state = create_container(store, container_id, plugins, plan, bundle.directory,
                                     dict(bundle.annotations), fifo_fd, hooks)
        finally:
            if console is not None:
                console.close()
    except BaseException:
        store.remove(container_id)
        raise
    if pid_file:
        write_pid_file(pid_file, state.pid)
    return state


def _give_fifo_to_container_root(directory: str, config: Any) -> None:
    """In a user namespace init opens the exec fifo as the container's root, a host id of the map: the
    fifo is that id's (still 0600: nobody else's), as runc gives it."""
    from lxcframe.idmap import container_root

    uid, gid = container_root(config)
    if (uid, gid) != (0, 0):
        os.chown(os.path.join(directory, "exec.fifo"), uid, gid)


def write_pid_file(path: str, pid: int) -> None:
    # As runc: written beside and renamed, so a reader never sees a partial pid.
    temporary = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.new")
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(str(pid))
    os.replace(temporary, path)
