"""cgroup v1: the container in ``lxc.payload.NAME`` of every v1 hierarchy, ``lxc.cgroup.*`` limits, freezer.

The driver logic lives in :mod:`lxcframe.cgroups`; this module only wires it to the stages. Keys
``lxc.cgroup.relative`` and ``lxc.cgroup.dir*`` are shared with ``cgroup2`` (see
:mod:`lxcframe.cgroups.settings` for which of the two declares them).
"""

from __future__ import annotations

from functools import partial

from lxcframe.cgroups import automount, limits, runtime, settings, start
from lxcframe.cgroups.drivers import build_driver
from lxcframe.cgroups.layout import current_layout
from lxcframe.cgroups.placement import Placed, from_record
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import AttachContext, ChildContext, HostContext
from lxcframe.hooks import hookimpl
from lxcframe.probe import Probe
from lxcframe.state import ContainerState

PLUGIN = "cgroup1"


def _placed(state: ContainerState) -> list[Placed]:
    return from_record(state.plugins.get(PLUGIN))


@hookimpl
def lxcframe_unavailable_reason() -> str | None:
    try:
        return build_driver(PLUGIN).unavailable_reason()
    except OSError as err:
        return f"cannot read the mount table: {err}"


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    keys = [KeySpec("lxc.cgroup.*", multi=True,
                    doc="lxc.cgroup.<controller>.<file> = value, written into the v1 payload cgroup")]
    if settings.declares_shared(PLUGIN):
        keys.extend(settings.shared_key_specs())
    return keys


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    return ["cgroup_relative"]


@hookimpl
def lxcframe_check() -> list[Probe]:
    return [build_driver(PLUGIN).probe()]


@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    return settings.settings_problems(config, PLUGIN) + limits.v1_problems(config, current_layout())


@hookimpl
def lxcframe_pre_start(ctx: HostContext) -> None:
    start.prepare(ctx, PLUGIN)


@hookimpl
def lxcframe_attach_cgroup(ctx: HostContext, pid: int) -> None:
    start.attach_init(ctx, PLUGIN, pid)


@hookimpl
def lxcframe_child_mount_filesystems(ctx: ChildContext) -> None:
    automount.mount_cgroups(ctx, PLUGIN)


@hookimpl
def lxcframe_attach(ctx: AttachContext) -> None:
    ctx.cgroup_procs.extend(runtime.attach_target(p) for p in _placed(ctx.state))


@hookimpl
def lxcframe_freeze(state: ContainerState, frozen: bool) -> bool | None:
    freezer = runtime.v1_freezer(_placed(state))
    if freezer is None:
        return None
    runtime.v1_set_frozen(freezer, frozen)
    return True


@hookimpl
def lxcframe_is_frozen(state: ContainerState) -> bool | None:
    freezer = runtime.v1_freezer(_placed(state))
    return None if freezer is None else runtime.v1_is_frozen(freezer)


@hookimpl
def lxcframe_kill_all(state: ContainerState, signal: int) -> bool | None:
    placed = _placed(state)
    if not placed:
        return None
    freezer = runtime.v1_freezer(placed)
    runtime.kill_frozen(placed, signal, partial(runtime.v1_set_frozen, freezer) if freezer else None)
    return True


@hookimpl
def lxcframe_info(state: ContainerState) -> dict[str, object]:
    return runtime.stats(_placed(state))


@hookimpl
def lxcframe_cleanup(state: ContainerState) -> None:
    problems = runtime.cleanup(_placed(state))
    if problems:
        raise OSError("; ".join(problems))
