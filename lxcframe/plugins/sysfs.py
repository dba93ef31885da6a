"""``/sys`` of the container from the ``sys`` tokens of ``lxc.mount.auto``, as LXC defines them.

* ``sys:rw`` – a plain writable sysfs (Debian's userns.conf sets it so udev works unprivileged);
* ``sys:mixed`` and bare ``sys`` – read-only, but the container's own network devices writable;
* ``sys:ro`` – read-only.

sysfs is always mounted writable and only the mount is made read-only: a read-only superblock
could not give ``sys:mixed`` its writable ``/sys/devices/virtual/net``. Works in a user namespace
because the container's network namespace belongs to it.
"""

from __future__ import annotations

import os

import attrs

from lxcframe import syscalls
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext
from lxcframe.hooks import hookimpl
from lxcframe.plugins.mounts import LOCKED_DOWN, bind_onto_itself, effective_auto, mount_at, remount
from lxcframe.rootfs_paths import makedirs_in_root


def mount_sys(ctx: ChildContext, mode: str) -> None:
    os.close(makedirs_in_root(ctx.root_fd, "/sys"))
    mount_at(ctx, "sysfs", "/sys", "sysfs", LOCKED_DOWN)
    if mode == "rw":
        return
    if mode == "mixed":
        bind_onto_itself(ctx, "/sys/devices/virtual/net")
        remount(ctx, "/sys/devices/virtual/net", syscalls.MS_BIND | LOCKED_DOWN)
    remount(ctx, "/sys", syscalls.MS_BIND | syscalls.MS_RDONLY | LOCKED_DOWN)


@attrs.frozen
class SysfsPart:
    """How /sys is mounted (``rw``, ``mixed`` or ``ro``): the last ``sys`` token of ``lxc.mount.auto``."""

    mode: str


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> SysfsPart | None:
    mode = effective_auto(config.get_all("lxc.mount.auto")).get("sys")
    return None if mode is None else SysfsPart(mode)


@hookimpl
def lxcframe_child_mount_filesystems(ctx: ChildContext) -> None:
    # First (lxcframe.stages.PLUGIN_ORDER): lxc.mount.entry lines may mount below /sys (common.conf's fuse connections).
    part = ctx.plan.part_or_none(SysfsPart)
    if part is not None:
        mount_sys(ctx, part.mode)
