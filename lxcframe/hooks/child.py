"""Child-side hooks: they run in the container's init child, in its new namespaces, in this order.

The order, with the core's steps between the stages, is :data:`lxcframe.stages.START_TABLE`; where the
order of builtin plugins within a stage matters, :data:`lxcframe.stages.PLUGIN_ORDER` says it.

The child is single-threaded and was forked from the monitor; it must not reuse the monitor's
netlink sockets or log sinks (log through ``ctx.log``, which crosses back to the monitor). A hook
that raises stops the start: the error, with the stage and the plugin, is reported to the monitor,
which unwinds the host side. Nothing a child hook does needs undoing on the host: the child's
mount namespace dies with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxcframe.hooks import hookspec

if TYPE_CHECKING:
    from lxcframe.context import AttachChildContext, ChildContext


@hookspec
def lxcframe_child_network(ctx: ChildContext) -> None:
    """Configure network devices inside the container's netns (stage ``child-network``).

    The monitor has already moved the devices in. Example: addresses, routes, link up.
    """


@hookspec
def lxcframe_child_pre_mount(ctx: ChildContext) -> None:
    """Before the rootfs is mounted (stage ``pre-mount``): hostname, session keyring, ``lxc.hook.pre-mount``.

    The mount namespace is private and ``/`` is a recursive slave already.
    """


@hookspec(firstresult=True)
def lxcframe_child_mount_rootfs(ctx: ChildContext) -> str | None:
    """Mount the rootfs at ``ctx.rootfs_mount`` and return that path (stage ``rootfs``).

    Stops at first non-None result: one backend (dir, overlay, …) answers.
    """


@hookspec
def lxcframe_child_mount_filesystems(ctx: ChildContext) -> None:
    """Mount proc, sys, cgroup and ``lxc.mount.entry``/``lxc.mount.fstab`` inside the rootfs (stage ``mounts``).

    Resolve every target with ``ctx.open_in_rootfs`` so a symlink cannot point a mount outside it.
    """


@hookspec
def lxcframe_child_devices(ctx: ChildContext) -> None:
    """Populate ``/dev``: tmpfs, device nodes (or host-node bind mounts), devpts, ptmx (stage ``devices``)."""


@hookspec
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    """Last look at the rootfs from outside: ``lxc.hook.mount`` and ``lxc.hook.autodev`` (stage ``pre-pivot``)."""


@hookspec
def lxcframe_child_security(ctx: ChildContext) -> None:
    """After ``pivot_root``: LSM label, capabilities, no_new_privs, seccomp (stage ``security``).

    Among the builtins the LSM comes first and seccomp last (:data:`lxcframe.stages.PLUGIN_ORDER`).
    """


@hookspec
def lxcframe_child_pre_exec(ctx: ChildContext) -> None:
    """Immediately before the payload is executed (stage ``exec``): ``lxc.hook.start``, pdeath signal."""


@hookspec
def lxcframe_attach_child(ctx: AttachChildContext) -> None:
    """In an ``attach`` child after it entered the container's namespaces, before it executes the command.

    Example: LSM label, capability bounding set, seccomp.
    """
