"""The ``cgroup`` plugin: every ``lxc.cgroup.*`` and ``lxc.cgroup2.*`` key, on every host, through named drivers.

The plugin owns the container's place in the cgroup trees (``lxc.payload.NAME``/``lxc.monitor.NAME``,
``lxc.cgroup.relative``, ``lxc.cgroup.dir*``: :mod:`.start`, :mod:`.naming`, :mod:`.placement`),
delegation and the cgroup mounts inside the container; its drivers (:mod:`.drivers`: ``v1`` for
cgroup v1 hierarchies, ``v2`` for the unified tree) add what their kind of hierarchy has: limits,
controllers, freezing, killing. Which drivers run is decided by the layout detected on demand
(:mod:`.layout`) less those switched off by name (:mod:`.selection`). ``-p no:cgroup`` switches all
of it off; its keys are then reported as this plugin's.

Importing this module detects nothing: the layout is read when a hook first needs it. Every command
loads every plugin, and most need little of this one (a daemon ``start``'s caller plans the settings,
``ls`` reads nothing of it): each hook imports what it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxcframe.hooks import hookimpl
from lxcframe.plugins.cgroup.layout import current_layout

if TYPE_CHECKING:
    from lxcframe.config.keys import KeySpec
    from lxcframe.config.model import ContainerConfig
    from lxcframe.context import AttachContext, ChildContext, HostContext
    from lxcframe.plugins.cgroup.drivers import Freezer
    from lxcframe.plugins.cgroup.placement import Placed
    from lxcframe.plugins.cgroup.settings import CgroupSettings
    from lxcframe.probe import Probe
    from lxcframe.state import ContainerState

#: The plugin's name (also in its state records).
PLUGIN = "cgroup"

__all__ = ["PLUGIN"]


def _placed(state: ContainerState) -> list[Placed]:
    from lxcframe.plugins.cgroup.placement import CgroupRecord, from_record

    return from_record(state.record(CgroupRecord))


@hookimpl
def lxcframe_unavailable_reason() -> str | None:
    try:
        layout = current_layout()
    except OSError as err:
        return f"cannot read the mount table: {err}"
    if layout.hierarchies:
        return None
    return f"layout {layout.mode}: no writable cgroup v1 hierarchy or cgroup2 filesystem is mounted"


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    from lxcframe.config.keys import KeySpec
    from lxcframe.plugins.cgroup import settings

    return [
        KeySpec(f"{settings.V1_PREFIX}*", multi=True,
                doc="lxc.cgroup.<controller>.<file> = value, written into the v1 payload cgroup (driver v1)"),
        KeySpec(f"{settings.V2_PREFIX}*", multi=True,
                doc="lxc.cgroup2.<file> = value, written into the unified payload cgroup (driver v2)"),
        *settings.key_specs(),
    ]


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    # Registration hooks see no caller: the layout says what this host offers.
    try:
        has_v2 = current_layout().v2 is not None
    except OSError:
        has_v2 = False
    return ["cgroup2", "cgroup_relative"] if has_v2 else ["cgroup_relative"]


@hookimpl
def lxcframe_check() -> list[Probe]:
    from lxcframe.plugins.cgroup.probe import probes

    return probes()


@hookimpl
def lxcframe_validate(config: ContainerConfig, manager: Any) -> list[str]:
    from lxcframe.plugins.cgroup import selection, settings

    return settings.settings_problems(config) + selection.problems(config, current_layout(), manager)


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> CgroupSettings:
    from lxcframe.plugins.cgroup import settings

    return settings.read_settings(config)


@hookimpl
def lxcframe_pre_start(ctx: HostContext) -> None:
    from lxcframe.plugins.cgroup import selection, start

    layout = current_layout()
    chosen = selection.select(layout, ctx.plugins)
    for name, why in chosen.off.items():
        ctx.log.info("cgroup driver switched off", driver=name, why=why)
    start.prepare(ctx, layout, chosen.running)


@hookimpl
def lxcframe_preload(plan: Any) -> None:
    # Every monitor and every worker of the server reads the layout: detected once here, it is only
    # checked against the mount table's cgroup lines afterwards (LayoutCache).
    if plan is None:
        current_layout()


@hookimpl
def lxcframe_act_for(pid: int) -> None:
    # A server's worker running a client's command: in the client's cgroups, /proc/self/cgroup (the
    # base of lxc.cgroup.relative, and where a foreground monitor and its child start) is the client's.
    from lxcframe.plugins.cgroup import delegated, start

    try:
        start.join_cgroups_of(current_layout(), pid)
    except PermissionError as err:
        raise delegated.not_delegated(err) from None


@hookimpl
def lxcframe_attach_cgroup(ctx: HostContext, pid: int) -> None:
    from lxcframe.plugins.cgroup import start

    start.attach_init(ctx, pid)


@hookimpl
def lxcframe_child_mount_filesystems(ctx: ChildContext) -> None:
    from lxcframe.plugins.cgroup import automount

    automount.mount_cgroups(ctx)


@hookimpl
def lxcframe_attach(ctx: AttachContext) -> None:
    from lxcframe.plugins.cgroup import runtime

    ctx.cgroup_procs.extend(runtime.attach_target(p) for p in _placed(ctx.state))


def _freezer(state: ContainerState) -> Freezer | None:
    """The freezer of the first driver, in order of preference, that has one for this container."""
    from lxcframe.plugins.cgroup.drivers import DRIVERS

    placed = _placed(state)
    return next((f for f in (driver.freezer(placed) for driver in DRIVERS.values()) if f is not None), None)


@hookimpl
def lxcframe_freeze(state: ContainerState, frozen: bool) -> bool | None:
    freezer = _freezer(state)
    if freezer is None:
        return None
    freezer[0](frozen)
    return True


@hookimpl
def lxcframe_is_frozen(state: ContainerState) -> bool | None:
    freezer = _freezer(state)
    return freezer[1]() if freezer is not None else None


@hookimpl
def lxcframe_kill_all(state: ContainerState, signal: int) -> bool | None:
    from lxcframe.plugins.cgroup.drivers import DRIVERS

    placed = _placed(state)
    for driver in DRIVERS.values():
        if driver.kill(placed, signal):
            return True
    return None


@hookimpl
def lxcframe_cgroup_item(state: ContainerState, key: str, value: str | None) -> str | None:
    from lxcframe.plugins.cgroup import items, live_devices

    placed = _placed(state)
    if not placed:
        return None  # started without this plugin: it holds none of the container's cgroups
    if key in live_devices.KEYS:
        answer = live_devices.item(state, placed, key, value)
        if answer is not None:
            return answer
    if value is None:
        return items.read(placed, key)
    items.write(placed, key, value)
    return ""


@hookimpl
def lxcframe_info(state: ContainerState) -> dict[str, object]:
    from lxcframe.plugins.cgroup import runtime

    return runtime.stats(_placed(state))


@hookimpl
def lxcframe_cleanup(state: ContainerState) -> None:
    from lxcframe.plugins.cgroup import device_record, runtime

    problems = runtime.cleanup(_placed(state))
    device_record.forget(state.runtime_dir)
    if problems:
        raise OSError("; ".join(problems))
