"""The essential core: identity, rootfs, init, environment, signals, logging, namespaces.

It cannot be disabled. Everything optional lives in its own plugin.
"""

from __future__ import annotations

import os
import signal

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec, absolute_path, boolean01, choice, uint
from lxcframe.context import ChildContext
from lxcframe.hooks import hookimpl
from lxcframe.log import parse_level
from lxcframe.validators import environment_entry, rootfs_path, signal_number

BASE_CLONE_FLAGS = (
    syscalls.CLONE_NEWNS | syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWIPC
    | syscalls.CLONE_NEWNET | syscalls.CLONE_NEWCGROUP
)


def _hostname(value: str) -> str:
    if len(value) > 64 or not value.replace("-", "").replace(".", "").replace("_", "").isalnum():
        raise ValueError("expected a host name of at most 64 letters, digits, '-', '_' or '.'")
    return value


def _command(value: str) -> tuple[str, ...]:
    words = tuple(value.split())
    if not words:
        raise ValueError("expected a command")
    return words


def _pdeath(value: str) -> int:
    return signal_number(value)


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [
        KeySpec("lxc.uts.name", _hostname, doc="host name inside the container"),
        KeySpec("lxc.rootfs.path", rootfs_path, doc="the root file system: /path or dir:/path"),
        KeySpec("lxc.rootfs.mount", absolute_path, doc="accepted for LXC compatibility; the rootfs is "
                "mounted on itself in the container's mount namespace"),
        KeySpec("lxc.rootfs.managed", boolean01, doc="0: destroy leaves rootfs and config alone"),
        KeySpec("lxc.init.cmd", _command, doc="init of a system container (default /sbin/init)"),
        KeySpec("lxc.init.cwd", absolute_path, doc="working directory of init"),
        KeySpec("lxc.init.uid", uint, doc="uid init runs as"),
        KeySpec("lxc.init.gid", uint, doc="gid init runs as"),
        KeySpec("lxc.execute.cmd", _command, doc="default command of an application container"),
        KeySpec("lxc.environment", environment_entry, multi=True, doc="NAME=value for init"),
        KeySpec("lxc.signal.halt", signal_number, doc="signal asking init to halt (default SIGPWR)"),
        KeySpec("lxc.signal.stop", signal_number, doc="signal that kills init (default SIGKILL)"),
        KeySpec("lxc.monitor.signal.pdeath", _pdeath,
                doc="signal to init when the monitor dies (default SIGKILL; 0 keeps it alive)"),
        KeySpec("lxc.log.file", absolute_path, doc="log file of this container"),
        KeySpec("lxc.log.level", parse_level, doc="log level of lxc.log.file"),
        KeySpec("lxc.arch", choice("x86_64", "amd64", "i686", "x86", "aarch64", "arm64", "linux64", "linux32"),
                doc="personality; only the host's own is supported"),
    ]


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    # lxc_log: the container's name on every log line, per thread (contextvars).
    return ["lxc_log", "lxc_config_item_is_supported", "pidfd"]


@hookimpl
def lxcframe_clone_flags() -> int:
    return BASE_CLONE_FLAGS


@hookimpl
def lxcframe_check() -> list[object]:
    from lxcframe import hostprobe

    return list(hostprobe.all_probes())


@hookimpl
def lxcframe_child_pre_mount(ctx: ChildContext) -> None:
    syscalls.sethostname(ctx.plan.hostname)


@hookimpl(trylast=True)
def lxcframe_child_mount_rootfs(ctx: ChildContext) -> str:
    """The ``dir`` backend: bind the rootfs directory onto itself so it becomes a mount to pivot into."""
    rootfs = ctx.plan.rootfs
    if not os.path.isdir(rootfs):
        raise FileNotFoundError(2, "rootfs is not a directory", rootfs)
    tree = ctx.received_fds.pop("rootfs_tree", None)
    if tree is not None:
        # A detached tree prepared by the monitor (e.g. idmapped): attach it where the rootfs is.
        try:
            syscalls.move_mount(tree, "", syscalls.AT_FDCWD, ctx.rootfs_mount, syscalls.MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(tree)
        return ctx.rootfs_mount
    syscalls.mount(rootfs, ctx.rootfs_mount, None, syscalls.MS_BIND | syscalls.MS_REC)
    return ctx.rootfs_mount


def default_halt_signal() -> int:
    return int(signal.SIGPWR)
