"""Ephemeral containers: ``lxc.ephemeral = 1`` removes the container once it stopped, as LXC does.

The removal is the last step of the ``post-stop`` stage (after ``lxc.hook.post-stop``, as LXC runs its
hooks before it destroys the container; :data:`lxcframe.stages.PLUGIN_ORDER`), in whichever process
ends the container: its monitor, or the worker a server forks once an adopted container's init exited.
It is the same removal as ``destroy`` (:mod:`lxcframe.removal`): the ``destroy`` hooks, then the
container's directory unless ``lxc.rootfs.managed = 0``. A container that reboots is started again by
its server and stays; one with snapshots stays (``destroy`` refuses it too), and the reason is logged.
A start that fails removes nothing: the container never ran.
"""

from __future__ import annotations

from lxcframe.config.keys import KeySpec, boolean01
from lxcframe.context import HostContext
from lxcframe.hooks import hookimpl


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [KeySpec("lxc.ephemeral", boolean01, doc="1: the container is destroyed when it stops (default 0)")]


@hookimpl
def lxcframe_post_stop(ctx: HostContext) -> None:
    if ctx.plan.config.get("lxc.ephemeral", False) is not True:
        return
    if ctx.restarting:
        ctx.log.info("lxc.ephemeral = 1: kept across its reboot")
        return
    from lxcframe import removal
    from lxcframe.copying_snapshots import snapshot_names

    snapshots = snapshot_names(ctx.plan.container_dir)
    if snapshots:
        ctx.log.error("lxc.ephemeral = 1: not destroyed, it has snapshots", snapshots=", ".join(snapshots))
        return
    removal.remove_container(ctx.name, ctx.plan.lxcpath, ctx.plugins, ctx.plan.config, ctx.log)
    ctx.log.info("lxc.ephemeral = 1: container destroyed")
