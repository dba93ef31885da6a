"""``/dev`` of the container: autodev tmpfs, device nodes (host-node bind fallback), devpts and ptmx."""

from __future__ import annotations

import errno
import os
import stat

import attrs

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec, boolean01, uint
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext
from lxcframe.hooks import hookimpl
from lxcframe.rootfs_paths import create_file_in_root, fd_path, makedirs_in_root, open_in_root

#: (name, major, minor): the nodes LXC's autodev creates, all mode 0666.
AUTODEV_NODES = (("full", 1, 7), ("null", 1, 3), ("random", 1, 8), ("tty", 5, 0), ("urandom", 1, 9),
                 ("zero", 1, 5))
_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
          ("stderr", "/proc/self/fd/2"))
DEVPTS_BASE = "newinstance,ptmxmode=0666,mode=0620"
#: Bytes of the autodev tmpfs unless lxc.autodev.tmpfs.size says otherwise: LXC's default.
AUTODEV_TMPFS_SIZE = 500000


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [
        KeySpec("lxc.autodev", boolean01, doc="populate a fresh tmpfs /dev (default 1)"),
        KeySpec("lxc.autodev.tmpfs.size", uint,
                doc=f"size of the autodev /dev tmpfs in bytes (0: the default, {AUTODEV_TMPFS_SIZE})"),
        KeySpec("lxc.pty.max", uint, doc="maximum ptys of the container's devpts (0: no devpts)"),
    ]


@attrs.frozen
class DevicesPart:
    """What the child makes of ``/dev``, decided by the caller (``lxcframe_plan``)."""

    #: ``lxc.autodev``: a fresh tmpfs /dev with :data:`AUTODEV_NODES` (default on).
    autodev: bool = True
    #: ``lxc.pty.max``: the devpts ``max=``; ``None`` sets no limit, ``0`` mounts no devpts.
    pty_max: int | None = None
    #: ``lxc.autodev.tmpfs.size``: bytes of the /dev tmpfs.
    tmpfs_size: int = AUTODEV_TMPFS_SIZE


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> DevicesPart:
    return DevicesPart(autodev=bool(config.get("lxc.autodev", True)), pty_max=config.get("lxc.pty.max"),
                       tmpfs_size=config.get("lxc.autodev.tmpfs.size", 0) or AUTODEV_TMPFS_SIZE)


def _bind_host_node(ctx: ChildContext, name: str) -> None:
    fd = create_file_in_root(ctx.root_fd, f"/dev/{name}", 0o000)
    try:
        syscalls.mount(f"/dev/{name}", fd_path(fd), None, syscalls.MS_BIND)
    finally:
        os.close(fd)


def make_node(ctx: ChildContext, name: str, major: int, minor: int) -> str:
    """Create /dev/NAME; where mknod is denied or the node unusable (user namespace), bind the host's.

    Returns how the node was made: ``mknod``, ``bind`` or ``exists``.
    """
    dev_fd = open_in_root(ctx.root_fd, "/dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.mknod(name, 0o666 | stat.S_IFCHR, os.makedev(major, minor), dir_fd=dev_fd)
        except FileExistsError:
            return "exists"
        except PermissionError:
            _bind_host_node(ctx, name)
            return "bind"
        os.chmod(f"{fd_path(dev_fd)}/{name}", 0o666)
        try:
            # On a filesystem that user namespace may not open devices from (SB_I_NODEV), the node
            # exists but cannot be opened: put the host's node over it.
            probe = os.open(f"{fd_path(dev_fd)}/{name}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            os.close(probe)
        except OSError as err:
            if err.errno in (errno.EPERM, errno.EACCES, errno.ENXIO, errno.EIO) and name != "tty":
                _bind_host_node(ctx, name)
                return "bind"
        return "mknod"
    finally:
        os.close(dev_fd)


def mount_devpts(ctx: ChildContext, pty_max: int | None) -> str:
    """Mount devpts; ``gid=5`` only where the kernel accepts it (EINVAL when gid 5 is unmapped)."""
    fd = makedirs_in_root(ctx.root_fd, "/dev/pts")
    flags = syscalls.MS_NOSUID | syscalls.MS_NOEXEC
    max_opt = f",max={pty_max}" if pty_max else ""
    attempts = [f"gid=5,{DEVPTS_BASE}{max_opt}", f"{DEVPTS_BASE}{max_opt}"]
    if max_opt:
        attempts += [f"gid=5,{DEVPTS_BASE}", DEVPTS_BASE]
    try:
        last: OSError | None = None
        for options in attempts:
            try:
                syscalls.mount("devpts", fd_path(fd), "devpts", flags, options)
                return options
            except OSError as err:
                last = err
        assert last is not None
        raise last
    finally:
        os.close(fd)


def _setup_ptmx(ctx: ChildContext) -> None:
    fd = create_file_in_root(ctx.root_fd, "/dev/ptmx", 0o000)
    source = open_in_root(ctx.root_fd, "/dev/pts/ptmx")
    try:
        syscalls.mount(fd_path(source), fd_path(fd), None, syscalls.MS_BIND)
    except OSError:
        os.close(fd)
        fd = -1
        dev_fd = open_in_root(ctx.root_fd, "/dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.unlink("ptmx", dir_fd=dev_fd)
            os.symlink("pts/ptmx", "ptmx", dir_fd=dev_fd)
        finally:
            os.close(dev_fd)
    finally:
        os.close(source)
        if fd >= 0:
            os.close(fd)


@hookimpl
def lxcframe_child_devices(ctx: ChildContext) -> None:
    part = ctx.plan.part(DevicesPart)
    if part.autodev:
        fd = makedirs_in_root(ctx.root_fd, "/dev")
        try:
            syscalls.mount("none", fd_path(fd), "tmpfs", syscalls.MS_NOSUID | syscalls.MS_NOEXEC,
                           f"size={part.tmpfs_size},mode=755")
        finally:
            os.close(fd)
        made = {name: make_node(ctx, name, major, minor) for name, major, minor in AUTODEV_NODES}
        ctx.log.debug("device nodes", **made)
        dev_fd = open_in_root(ctx.root_fd, "/dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name, target in _LINKS:
                os.symlink(target, name, dir_fd=dev_fd)
            os.mkdir("shm", 0o1777, dir_fd=dev_fd)
        finally:
            os.close(dev_fd)
    pty_max = part.pty_max
    if pty_max == 0:
        return
    options = mount_devpts(ctx, pty_max)
    ctx.log.debug("devpts mounted", options=options)
    _setup_ptmx(ctx)
