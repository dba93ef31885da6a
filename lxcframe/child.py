"""The container's init child: from the fork in the monitor to the exec of the payload.

Runs single-threaded in a process forked from the monitor. Never returns: it executes the payload
or reports an error over the channel and leaves with ``os._exit``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from typing import Any, NoReturn

from lxcframe import entering, sealed_init, syscalls
from lxcframe.channel import Channel, ChildLog
from lxcframe.context import ChildContext, Identity, StartPlan
from lxcframe.driver import ChildWalk, StepFailed
from lxcframe.errors import StageError
from lxcframe.handover import Received
from lxcframe.process_proof import is_alive
from lxcframe.stage_runner import describe
from lxcframe.stages import Barrier


def _wait_go(channel: Channel, barrier: str, received: Received) -> None:
    channel.send({"t": "barrier", "name": barrier})
    record = channel.recv()
    if record is None or record.get("t") != "go":
        # The monitor gave up on us (or died): nothing to report to.
        os._exit(1)
    received.add(record.get("handover"), record.get("_fds", {}))


#: Modules Python would import lazily after pivot_root, when the host's files are out of reach.
_PRELOAD = ("encodings.ascii", "encodings.latin_1", "encodings.utf_8", "encodings.idna")


def preload() -> None:
    import importlib

    for module in _PRELOAD:
        importlib.import_module(module)


def run_child(plugins: Any, plan: StartPlan, channel: Channel, monitor_pidfd: int, init_fd: int = -1) -> NoReturn:
    """The init child. ``monitor_pidfd`` tells whether the monitor still lives; ``init_fd`` is the
    sealed static init that ``execute`` runs as pid 1."""
    preload()
    # Hooks run from here (the start hook inside the container) and the payload inherit no
    # disposition of whoever forked the monitor: Python's ignored SIGPIPE and SIGXFSZ, a shell's
    # ignored SIGINT and SIGQUIT for a background job.
    entering.default_signals()
    walk = ChildWalk(_InitChild(plugins, plan, channel, monitor_pidfd, init_fd))
    try:
        walk.run()  # its last step executes the payload: returning from it is a failure too
    except StageError as err:
        _report(channel, err.stage, err.plugin, err.message, err.errno)
    except BaseException as err:
        errno = err.errno if isinstance(err, OSError) else None
        _report(channel, walk.at, None, describe(err), errno)
    os._exit(1)


class _InitChild:
    """The init child's side of the start table (:mod:`lxcframe.stages`): its core steps, what a
    barrier means to it and the arguments its hooks get; :class:`lxcframe.driver.ChildWalk` walks it."""

    def __init__(self, plugins: Any, plan: StartPlan, channel: Channel, monitor_pidfd: int, init_fd: int) -> None:
        self.plugins = plugins
        self.plan = plan
        self.channel = channel
        self.monitor_pidfd = monitor_pidfd
        self.init_fd = init_fd
        self.userns = bool(plan.clone_flags & syscalls.CLONE_NEWUSER)
        #: Typed messages and descriptors the monitor handed over at the barriers so far.
        self.received = Received()
        self._ctx: ChildContext | None = None

    def context(self) -> ChildContext:
        # Made for the first stage of the child (after the namespaces barrier): what the monitor
        # handed over up to then is what its hooks get; later barriers add descriptors only.
        if self._ctx is None:
            self._ctx = ChildContext(self.plan, ChildLog(self.channel), self.received)
        return self._ctx

    def arguments(self) -> dict[str, Any]:
        return {"ctx": self.context()}

    def wait_go(self, barrier: Barrier) -> None:
        _wait_go(self.channel, barrier.name, self.received)

    # --- core steps, in the table's order -----------------------------------------------------------

    def clone(self) -> None:
        # Die with the monitor until the payload runs; a pid namespace makes our parent pid 0.
        _arm_pdeath(signal.SIGKILL, self.monitor_pidfd)
        if self.plan.new_pidns and not self.plan.pidns_in_child and os.getppid() != 0:
            os._exit(1)

    def unshare_user(self) -> None:
        if self.userns:
            syscalls.unshare(syscalls.CLONE_NEWUSER)

    def unshare(self) -> None:
        flags = self.plan.clone_flags & ~syscalls.CLONE_NEWUSER
        if self.plan.pidns_in_child:
            # A pid namespace owned by the container's user namespace (so /proc can be mounted in
            # it) must be created after that user namespace: here, with one more fork.
            flags |= syscalls.CLONE_NEWPID
        syscalls.unshare(flags)
        if self.plan.pidns_in_child:
            _fork_pid1(self.channel)

    def private_mounts(self) -> None:
        # Nothing we mount from here on may propagate back to the host.
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_SLAVE)

    def open_rootfs(self) -> None:
        ctx = self.context()
        ctx.root_fd = os.open(ctx.rootfs_mount, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def become_root(self) -> None:
        if not self.userns:
            return
        # Only now take the container's ids: up to here we kept the host root's, which own the
        # path to the rootfs (a 0700 directory above it is common); inside we have root_fd.
        identity = self.plan.part_or_none(Identity) or Identity(0, 0)
        become(identity.uid, identity.gid)
        _arm_pdeath(signal.SIGKILL, self.monitor_pidfd)  # a change of ids cleared it

    def pivot(self) -> None:
        ctx = self.context()
        _rootfs_flags(ctx)
        _pivot(ctx.root_fd)
        os.close(ctx.root_fd)

    def close_descriptors(self) -> None:
        # Nothing of the host goes on into the container: only stdio, the channel (close-on-exec,
        # its EOF says the exec happened), the init to execute and what a plugin kept on purpose.
        entering.close_descriptors({self.channel.fileno(), self.monitor_pidfd, self.init_fd,
                                    *self.context().keep_fds})

    def enter_cwd(self) -> None:
        cwd = self.plan.cwd
        try:
            entering.enter_cwd(cwd)
        except OSError as err:
            raise StepFailed(f"lxc.init.cwd {cwd}: {err.strerror}") from None
        except entering.OutsideRoot as err:
            raise StepFailed(f"lxc.init.cwd: {err}") from None

    def final_ids(self) -> None:
        _set_final_ids(self.context())
        _arm_pdeath(self.plan.config.get("lxc.monitor.signal.pdeath", int(signal.SIGKILL)), self.monitor_pidfd)

    def exec(self) -> None:
        _exec_payload(self.plan, self.channel, self.init_fd if self.plan.mode == "execute" else -1)


def _fork_pid1(channel: Channel) -> None:
    """Fork the container's pid 1; this process stays outside as its parent and mirrors its end."""
    pid = os.fork()
    if pid == 0:
        syscalls.set_pdeathsig(signal.SIGKILL)
        if os.getppid() != 0:
            os._exit(1)
        return
    channel.send({"t": "init", "pid": pid})
    channel.close()
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(1)
    if os.WIFSIGNALED(status):
        # End the same way, so the monitor sees what ended init.
        signum = os.WTERMSIG(status)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(os.waitstatus_to_exitcode(status))


def _report(channel: Channel, stage: str, plugin: str | None, message: str, errno: int | None) -> None:
    try:
        channel.send({"t": "error", "stage": stage, "plugin": plugin, "message": message, "errno": errno})
    except OSError:
        pass


def become(uid: int, gid: int, *, keep_groups: bool = False) -> None:
    """Take ``uid`` and ``gid`` (real, effective and saved) and no supplementary groups (with
    ``keep_groups``, those set already: ``lxc.init.groups``)."""
    try:
        if not keep_groups:
            os.setgroups([])  # the host's supplementary groups mean nothing inside
    except PermissionError:
        pass  # setgroups is denied in a user namespace whose gid map was written without it
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def _pivot(root_fd: int) -> None:
    # pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only the new.
    os.fchdir(root_fd)
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", syscalls.MNT_DETACH)
    os.chdir("/")


def _rootfs_flags(ctx: ChildContext) -> None:
    """The rootfs mount's flags (``lxc.rootfs.options``), set last, once every stage made what it mounts
    on inside (a read-only rootfs takes no new mount point); the mounts on it keep their own."""
    if not ctx.rootfs_flags:
        return
    # A bind remount changes the flags of this one mount, whatever made it (bind, overlay, idmapped tree).
    syscalls.mount(None, f"/proc/self/fd/{ctx.root_fd}", None,
                   syscalls.MS_BIND | syscalls.MS_REMOUNT | ctx.rootfs_flags)


def _set_final_ids(ctx: ChildContext) -> None:
    groups = ctx.final_groups
    if groups is not None:
        try:
            os.setgroups(list(groups))
        except OSError as err:
            raise StepFailed(f"lxc.init.groups {','.join(map(str, groups))}: setgroups: {err.strerror}") from None
    if (ctx.final_uid, ctx.final_gid) == (os.getuid(), os.getgid()):
        return
    become(ctx.final_uid, ctx.final_gid, keep_groups=groups is not None)


def _arm_pdeath(signum: int, monitor_pidfd: int) -> None:
    """Ask for ``signum`` when our parent dies, then make sure the monitor did not die already.

    The kernel clears the parent-death signal at every change of uid or gid, so it is armed again
    after each (as LXC does); 0 lets the container outlive its monitor. Our parent may be the
    monitor or, with a pid namespace of a user namespace, a process that dies with the monitor:
    either way the monitor's pidfd turning readable means the signal would have come too late.
    """
    syscalls.set_pdeathsig(signum)
    if signum and not is_alive(monitor_pidfd):
        os._exit(1)


def _exec_payload(plan: StartPlan, channel: Channel, init_fd: int) -> NoReturn:
    """Execute the payload, or with ``init_fd`` the sealed static init that runs it (``execute``)."""
    env = dict(item.partition("=")[::2] for item in plan.env)
    command = plan.argv[0]
    if init_fd >= 0 and entering.resolve_command(command, env) is None:
        # tini would only say so on stderr with status 127: report it as a failed start.
        raise StepFailed(f"cannot execute {command}: No such file or directory", errno.ENOENT)
    # From here a closed channel means the exec succeeded (the socket is close-on-exec). A monitor
    # already gone (one that left init behind on purpose, lxc.monitor.signal.pdeath = 0) waits for nothing.
    with contextlib.suppress(OSError):
        channel.send({"t": "exec"})
    try:
        if init_fd >= 0:
            os.execve(init_fd, sealed_init.init_argv(plan.argv), env)
        os.execvpe(command, list(plan.argv), env)
    except OSError as err:
        what = "the static init" if init_fd >= 0 else command
        raise StepFailed(f"cannot execute {what}: {err.strerror}", err.errno) from None
