"""cgroup2: the container in ``lxc.payload.NAME`` of the unified tree, ``lxc.cgroup2.*`` limits, freeze, kill.

Controllers are handed down through ``cgroup.subtree_control`` as far as the container needs them.
Freezing and ``stop -k`` prefer this plugin (``tryfirst``) where the kernel has ``cgroup.freeze`` and
``cgroup.kill``: one write acts on the whole tree, a frozen task can still be killed, and no process
can fork its way out between reading ``cgroup.procs`` and signalling.
"""

from __future__ import annotations

import signal as signals
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

PLUGIN = "cgroup2"


def _placed(state: ContainerState) -> list[Placed]:
    return from_record(state.plugins.get(PLUGIN))


def _freezable(state: ContainerState) -> Placed | None:
    unified = runtime.unified(_placed(state))
    return unified if unified is not None and runtime.v2_can_freeze(unified) else None


@hookimpl
def lxcframe_unavailable_reason() -> str | None:
    try:
        return build_driver(PLUGIN).unavailable_reason()
    except OSError as err:
        return f"cannot read the mount table: {err}"


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    keys = [KeySpec("lxc.cgroup2.*", multi=True,
                    doc="lxc.cgroup2.<file> = value, written into the unified payload cgroup")]
    if settings.declares_shared(PLUGIN):
        keys.extend(settings.shared_key_specs())
    return keys


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    return ["cgroup2", "cgroup_relative"]


@hookimpl
def lxcframe_check() -> list[Probe]:
    return [build_driver(PLUGIN).probe()]


@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    problems = settings.settings_problems(config, PLUGIN)
    layout = current_layout()
    unified = layout.v2
    if unified is not None:
        problems += limits.v2_problems(config, unified, layout.v1_controllers)
    return problems


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


@hookimpl(tryfirst=True)
def lxcframe_freeze(state: ContainerState, frozen: bool) -> bool | None:
    unified = _freezable(state)
    if unified is None:
        return None
    runtime.v2_set_frozen(unified, frozen)
    return True


@hookimpl(tryfirst=True)
def lxcframe_is_frozen(state: ContainerState) -> bool | None:
    unified = _freezable(state)
    return None if unified is None else runtime.v2_is_frozen(unified)


@hookimpl(tryfirst=True)
def lxcframe_kill_all(state: ContainerState, signal: int) -> bool | None:
    unified = runtime.unified(_placed(state))
    if unified is None:
        return None
    if signal == signals.SIGKILL and runtime.v2_kill(unified):
        return True
    freeze = partial(runtime.v2_set_frozen, unified) if runtime.v2_can_freeze(unified) else None
    runtime.kill_frozen([unified], signal, freeze)
    return True


@hookimpl
def lxcframe_info(state: ContainerState) -> dict[str, object]:
    return runtime.stats(_placed(state))


@hookimpl
def lxcframe_cleanup(state: ContainerState) -> None:
    problems = runtime.cleanup(_placed(state))
    if problems:
        raise OSError("; ".join(problems))
