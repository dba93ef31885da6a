"""``lxc.mount.auto = cgroup[:ro|:rw|:mixed][:force]`` and ``cgroup-full…``: cgroupfs inside the container.

As in LXC: a container with its own cgroup namespace that keeps CAP_SYS_ADMIN mounts its cgroups
itself, so nothing is mounted unless ``:force`` asks. Otherwise a tmpfs goes on ``/sys/fs/cgroup``
(on a pure cgroup2 host the unified tree goes there directly) with one directory per hierarchy,
named as on the host, each hierarchy mounted afresh inside the cgroup namespace, where it shows the
container's own cgroup as its root. ``ro`` mounts them read-only; ``ro`` and ``mixed`` (the
default) leave the tmpfs read-only. The child is in its cgroup namespace already (the monitor moved
it first), and every target is resolved inside the rootfs.

The monitor hands the child the hierarchies the container was placed in (:func:`mounts_for_child`): all
of them are mounted at once, after the tmpfs got a directory for each.
"""

from __future__ import annotations

import os

import attrs

from lxcframe import syscalls
from lxcframe.context import ChildContext, StartPlan
from lxcframe.plugins.cgroup.layout import V2
from lxcframe.plugins.cgroup.placement import Placed
from lxcframe.rootfs_paths import fd_path, makedirs_in_root, open_in_root

CGROUP_ROOT = "/sys/fs/cgroup"
_FLAGS = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC | syscalls.MS_RELATIME
_TMPFS_DATA = "size=10240k,mode=755"


@attrs.frozen
class AutoCgroup:
    full: bool
    mode: str  # ro, rw or mixed
    force: bool


def parse_token(word: str) -> AutoCgroup:
    """``cgroup``, ``cgroup:ro:force``, ``cgroup-full:rw`` … (the mounts plugin checked the words)."""
    head, *parts = word.split(":")
    mode = next((p for p in parts if p in ("ro", "rw", "mixed")), "mixed")
    return AutoCgroup(full=head == "cgroup-full", mode=mode, force="force" in parts)


def wanted(plan: StartPlan) -> AutoCgroup | None:
    """The plan's cgroup token, unless init mounts its cgroups itself (LXC's rule, without ``:force``):
    it has its own cgroup namespace and keeps CAP_SYS_ADMIN (the caps plugin's part drops none)."""
    from lxcframe.plugins.caps import CapsPart
    from lxcframe.plugins.mounts import MountsPart

    mounts = plan.part_or_none(MountsPart)
    word = mounts.token("cgroup") if mounts is not None else None
    if word is None:
        return None
    spec = parse_token(word)
    caps = plan.part_or_none(CapsPart)
    keeps_sys_admin = caps is None or syscalls.cap_number("sys_admin") not in caps.drop
    if not spec.force and plan.clone_flags & syscalls.CLONE_NEWCGROUP and keeps_sys_admin:
        return None
    return spec


@attrs.frozen
class CgroupMount:
    """One hierarchy as the child mounts it: its directory below /sys/fs/cgroup, type and options."""

    dir: str
    fstype: str
    data: str | None
    #: A pure cgroup2 host: the unified tree itself goes on /sys/fs/cgroup.
    at_root: bool
    #: The container's own cgroup in the host's hierarchy: bound instead where cgroupfs cannot be mounted.
    host_dir: str = ""


@attrs.frozen
class CgroupMounts:
    """Handed to the child at its first barrier."""

    mounts: tuple[CgroupMount, ...]


def mounts_for_child(placed: list[Placed]) -> CgroupMounts:
    """What the child needs to mount these hierarchies (handed over at the first barrier)."""
    return CgroupMounts(tuple(
        CgroupMount(p.hierarchy.mount_dir, "cgroup2" if p.kind == V2 else "cgroup", p.hierarchy.mount_data,
                    p.mountpoint.rstrip("/") == CGROUP_ROOT, p.path(p.init))
        for p in placed))


def _mount(ctx: ChildContext, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None) -> None:
    fd = open_in_root(ctx.root_fd, target)
    try:
        syscalls.mount(source, fd_path(fd), fstype, flags, data)
    finally:
        os.close(fd)


def _prepare_root(ctx: ChildContext, spec: AutoCgroup, mounts: tuple[CgroupMount, ...]) -> None:
    os.close(makedirs_in_root(ctx.root_fd, CGROUP_ROOT))
    if any(m.at_root for m in mounts):
        return  # pure cgroup2: the unified tree itself goes on /sys/fs/cgroup
    _mount(ctx, "cgroup_root", CGROUP_ROOT, "tmpfs", _FLAGS, _TMPFS_DATA)
    for m in mounts:
        os.close(makedirs_in_root(ctx.root_fd, f"{CGROUP_ROOT}/{m.dir}"))
    if spec.mode in ("ro", "mixed"):
        _mount(ctx, "cgroup_root", CGROUP_ROOT, "tmpfs", syscalls.MS_REMOUNT | syscalls.MS_RDONLY | _FLAGS,
               _TMPFS_DATA)


def mount_cgroups(ctx: ChildContext) -> None:
    spec = wanted(ctx.plan)
    message = ctx.received.message(CgroupMounts)
    mounts = message.mounts if message is not None else ()
    if spec is None or not mounts:
        return
    _prepare_root(ctx, spec, mounts)
    flags = _FLAGS | (syscalls.MS_RDONLY if spec.mode == "ro" else 0)
    for m in mounts:
        target = CGROUP_ROOT if m.at_root else f"{CGROUP_ROOT}/{m.dir}"
        try:
            _mount(ctx, m.fstype, target, m.fstype, flags, m.data)
        except PermissionError:
            if not m.host_dir:
                raise
            # In a user namespace whose cgroup namespace is the host's (an OCI bundle without one), the
            # kernel refuses cgroupfs: the container's own cgroup is bound from the host's hierarchy
            # instead, as runc does, which is what a fresh mount in a cgroup namespace would show.
            _bind(ctx, m.host_dir, target, read_only=spec.mode == "ro")


def _bind(ctx: ChildContext, source: str, target: str, *, read_only: bool) -> None:
    _mount(ctx, source, target, None, syscalls.MS_BIND, None)
    if read_only:
        # Opened again: the bound tree's root, not the directory under it. The host mount's nosuid,
        # nodev and noexec are locked in a user namespace: kept.
        _mount(ctx, None, target, None, syscalls.MS_REMOUNT | syscalls.MS_BIND | syscalls.MS_RDONLY | _FLAGS, None)
