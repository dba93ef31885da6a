"""The container's init child: from the fork in the monitor to the exec of the payload.

Runs single-threaded in a process forked from the monitor. Never returns: it executes the payload
or reports an error over the channel and leaves with ``os._exit``.
"""

from __future__ import annotations

import errno
import os
import select
import signal
from typing import Any, NoReturn

from lxcframe import entering, sealed_init, syscalls
from lxcframe.channel import Channel, ChildLog
from lxcframe.context import ChildContext, StartPlan
from lxcframe.errors import StageError
from lxcframe.stage_runner import call_hook, describe


class _Failed(Exception):
    def __init__(self, stage: str, plugin: str | None, message: str, errno: int | None) -> None:
        super().__init__(message)
        self.stage, self.plugin, self.errno = stage, plugin, errno


def _wait_go(channel: Channel, barrier: str, fds: dict[str, int]) -> dict[str, Any]:
    channel.send({"t": "barrier", "name": barrier})
    record = channel.recv()
    if record is None or record.get("t") != "go":
        # The monitor gave up on us (or died): nothing to report to.
        os._exit(1)
    fds.update(record.get("_fds", {}))
    data: dict[str, Any] = record.get("data") or {}
    return data


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
    stage = "clone"
    try:
        # Die with the monitor until the payload runs; a pid namespace makes our parent pid 0.
        _arm_pdeath(signal.SIGKILL, monitor_pidfd)
        if plan.new_pidns and not plan.pidns_in_child and os.getppid() != 0:
            os._exit(1)
        received: dict[str, int] = {}
        userns = bool(plan.clone_flags & syscalls.CLONE_NEWUSER)
        if userns:
            syscalls.unshare(syscalls.CLONE_NEWUSER)
        from_host = _wait_go(channel, "created", received)
        stage = "namespaces"
        flags = plan.clone_flags & ~syscalls.CLONE_NEWUSER
        if plan.pidns_in_child:
            # A pid namespace owned by the container's user namespace (so /proc can be mounted in
            # it) must be created after that user namespace: here, with one more fork.
            flags |= syscalls.CLONE_NEWPID
        syscalls.unshare(flags)
        if plan.pidns_in_child:
            _fork_pid1(channel)
        from_host.update(_wait_go(channel, "namespaces", received))
        ctx = ChildContext(plan, ChildLog(channel), from_host)
        ctx.received_fds = received
        call_hook(plugins, "lxcframe_child_network", ctx=ctx)
        stage = "pre-mount"
        # Nothing we mount from here on may propagate back to the host.
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_SLAVE)
        call_hook(plugins, "lxcframe_child_pre_mount", ctx=ctx)
        if not call_hook(plugins, "lxcframe_child_mount_rootfs", firstresult=True, ctx=ctx):
            raise StageError("rootfs", None, "no plugin mounted the rootfs")
        stage = "rootfs"
        ctx.root_fd = os.open(ctx.rootfs_mount, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        if userns:
            # Only now take the container's ids: up to here we kept the host root's, which own the
            # path to the rootfs (a 0700 directory above it is common); inside we have root_fd.
            identity = from_host.get("idmap", {})
            become(identity.get("uid", 0), identity.get("gid", 0))
            _arm_pdeath(signal.SIGKILL, monitor_pidfd)  # a change of ids cleared it
        call_hook(plugins, "lxcframe_child_mount_filesystems", ctx=ctx)
        call_hook(plugins, "lxcframe_child_devices", ctx=ctx)
        call_hook(plugins, "lxcframe_child_pre_pivot", ctx=ctx)
        stage = "pivot"
        _pivot(ctx.root_fd)
        os.close(ctx.root_fd)
        # Set up, not yet confined: the host runs its start-host stage now, before init (LXC's order).
        stage = "start-host"
        _wait_go(channel, "start-host", received)
        call_hook(plugins, "lxcframe_child_security", ctx=ctx)
        call_hook(plugins, "lxcframe_child_pre_exec", ctx=ctx)
        stage = "exec"
        # Nothing of the host goes on into the container: only stdio, the channel (close-on-exec,
        # its EOF says the exec happened), the init to execute and what a plugin kept on purpose.
        entering.close_descriptors({channel.fileno(), monitor_pidfd, init_fd, *ctx.keep_fds})
        try:
            entering.enter_cwd(plan.cwd)
        except OSError as err:
            raise StageError("exec", None, f"lxc.init.cwd {plan.cwd}: {err.strerror}") from None
        except entering.OutsideRoot as err:
            raise StageError("exec", None, f"lxc.init.cwd: {err}") from None
        _set_final_ids(ctx)
        _arm_pdeath(plan.config.get("lxc.monitor.signal.pdeath", int(signal.SIGKILL)), monitor_pidfd)
        _exec_payload(plan, channel, init_fd if plan.mode == "execute" else -1)
    except StageError as err:
        _report(channel, err.stage, err.plugin, err.message, err.errno)
    except BaseException as err:
        errno = err.errno if isinstance(err, OSError) else None
        _report(channel, stage, None, describe(err), errno)
    os._exit(1)


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


def become(uid: int, gid: int) -> None:
    """Take ``uid`` and ``gid`` (real, effective and saved) and no supplementary groups."""
    try:
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


def _set_final_ids(ctx: ChildContext) -> None:
    if (ctx.final_uid, ctx.final_gid) == (os.getuid(), os.getgid()):
        return
    become(ctx.final_uid, ctx.final_gid)


def _arm_pdeath(signum: int, monitor_pidfd: int) -> None:
    """Ask for ``signum`` when our parent dies, then make sure the monitor did not die already.

    The kernel clears the parent-death signal at every change of uid or gid, so it is armed again
    after each (as LXC does); 0 lets the container outlive its monitor. Our parent may be the
    monitor or, with a pid namespace of a user namespace, a process that dies with the monitor:
    either way the monitor's pidfd turning readable means the signal would have come too late.
    """
    syscalls.set_pdeathsig(signum)
    if signum and select.select([monitor_pidfd], [], [], 0)[0]:
        os._exit(1)


def _exec_payload(plan: StartPlan, channel: Channel, init_fd: int) -> NoReturn:
    """Execute the payload, or with ``init_fd`` the sealed static init that runs it (``execute``)."""
    env = dict(item.partition("=")[::2] for item in plan.env)
    command = plan.argv[0]
    if init_fd >= 0 and entering.resolve_command(command, env) is None:
        # tini would only say so on stderr with status 127: report it as a failed start.
        raise StageError("exec", None, f"cannot execute {command}: No such file or directory", errno.ENOENT)
    # From here a closed channel means the exec succeeded (the socket is close-on-exec).
    channel.send({"t": "exec"})
    try:
        if init_fd >= 0:
            os.execve(init_fd, sealed_init.init_argv(plan.argv), env)
        os.execvpe(command, list(plan.argv), env)
    except OSError as err:
        what = "the static init" if init_fd >= 0 else command
        raise StageError("exec", None, f"cannot execute {what}: {err.strerror}", err.errno) from None
