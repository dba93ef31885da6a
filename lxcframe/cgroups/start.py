"""The start of a container, as far as cgroups go: create, limit, delegate, move the monitor and init.

Both plugins call :func:`prepare` in ``pre-start``. Whichever runs first creates the cgroups of
*every* enabled cgroup plugin in one go, so that a name collision gives the same suffix in all
hierarchies, v1 and v2 alike; each plugin then applies its own limits and records its own part in
``ctx.records[plugin]``. The removal undo reads that record when it runs, so it removes what was
added after creation (an inner cgroup) too.
"""

from __future__ import annotations

import errno
import functools
import os
import posixpath

import attrs

from lxcframe import idmap
from lxcframe.cgroups import automount, fs, limits
from lxcframe.cgroups.delegate import delegate
from lxcframe.cgroups.drivers import KIND_OF, driver_from
from lxcframe.cgroups.layout import V1, current_layout
from lxcframe.cgroups.naming import base_cgroups, cgroup_in, read_proc_cgroup
from lxcframe.cgroups.placement import Placed, add_inner, create, from_record, move_self, to_record
from lxcframe.cgroups.runtime import cleanup
from lxcframe.cgroups.settings import read_settings
from lxcframe.context import HostContext


def _remove_recorded(ctx: HostContext, plugin: str) -> None:
    problems = cleanup(from_record(ctx.records.get(plugin)))
    if problems:
        raise OSError(errno.EBUSY, "; ".join(problems))


def ensure_created(ctx: HostContext) -> None:
    """Create payload and monitor cgroups for every enabled cgroup plugin, unless done already."""
    enabled = [plugin for plugin in KIND_OF if ctx.plugins.is_enabled(plugin)]
    if any(plugin in ctx.records for plugin in enabled):
        return
    layout = current_layout()
    settings = read_settings(ctx.plan.config)
    hierarchies = tuple(h for plugin in enabled for h in driver_from(layout, plugin).hierarchies)
    bases = base_cgroups(hierarchies, settings.relative)
    placed = create(hierarchies, bases, settings, ctx.name, with_monitor=not ctx.monitor_is_caller)
    try:
        records = {plugin: to_record(p for p in placed if p.kind == KIND_OF[plugin]) for plugin in enabled}
    except BaseException:
        cleanup(placed)  # nothing undoes them yet
        raise
    for plugin in enabled:
        ctx.records[plugin] = records[plugin]
        ctx.undo.push(f"remove the {plugin} cgroups", functools.partial(_remove_recorded, ctx, plugin))


def _levels(base: str, last: str) -> list[str]:
    """``base`` and each cgroup below it down to ``last`` included."""
    levels = [base]
    relative = posixpath.relpath(last, base)
    current = base
    if relative != ".":
        for part in relative.split("/"):
            current = posixpath.join(current, part)
            levels.append(current)
    return levels


def enable_controllers(unified: Placed, wanted: set[str], down_to: str) -> None:
    """Enable ``wanted`` controllers in ``cgroup.subtree_control`` from the base down to ``down_to``.

    Only what is missing is written, so a base that already hands them down is not touched.
    """
    if not wanted:
        return
    for level in _levels(unified.base, down_to):
        directory = unified.path(level)
        offered = set((fs.read_or_none(os.path.join(directory, "cgroup.controllers")) or "").split())
        enabled = set((fs.read_or_none(os.path.join(directory, "cgroup.subtree_control")) or "").split())
        missing = sorted((wanted & offered) - enabled)
        if not missing:
            continue
        try:
            fs.write(os.path.join(directory, "cgroup.subtree_control"), " ".join(f"+{c}" for c in missing))
        except OSError as err:
            if err.errno == errno.EBUSY:
                raise OSError(errno.EBUSY, f"cannot hand {', '.join(missing)} down from {level}: it has processes "
                              "of its own (cgroup2 allows no process in a cgroup that hands controllers down); "
                              "set lxc.cgroup.dir or start from another cgroup") from None
            raise


def _update(ctx: HostContext, plugin: str, placed: list[Placed]) -> None:
    ctx.records[plugin] = to_record(placed)


def prepare(ctx: HostContext, plugin: str) -> None:
    """``pre-start`` of one cgroup plugin: its cgroups exist, limited, delegated; the monitor moved."""
    ensure_created(ctx)
    placed = from_record(ctx.records.get(plugin))
    if not placed:
        return
    config = ctx.plan.config
    settings = read_settings(config)
    inner = settings.dir_inner if settings.dir_container else None
    delegating = bool(idmap.config_entries(config))
    if KIND_OF[plugin] == V1:
        limits.apply_v1(placed, limits.v1_limits(config))
    else:
        unified = placed[0]
        wanted = limits.v2_controllers_needed(config, unified.hierarchy)
        if delegating:
            wanted |= set(unified.controllers)
        enable_controllers(unified, wanted, posixpath.dirname(unified.payload))
        v1_controllers = current_layout().v1_controllers
        ignored = limits.ignored_v2_device_rules(config, v1_controllers)
        if ignored:
            ctx.log.info("lxc.cgroup2.devices rules ignored: devices is a v1 controller here",
                         rules=len(ignored))
        limits.apply_v2(unified, limits.v2_limits(config, v1_controllers))
        if inner:
            enable_controllers(unified, wanted, unified.payload)
    if inner:
        # After the limits: a v1 devices cgroup takes "a" rules only while it has no children.
        placed = [add_inner(p, inner) for p in placed]
        _update(ctx, plugin, placed)
    if delegating:
        uid, gid = idmap.container_root(config)
        for p in placed:
            delegate(p.kind, p.path(p.init), uid, gid)
    if not ctx.monitor_is_caller:
        placed = _move_monitor(ctx, plugin, placed)
    ctx.to_child[plugin] = automount.child_data(placed)


def _move_monitor(ctx: HostContext, plugin: str, placed: list[Placed]) -> list[Placed]:
    own = read_proc_cgroup("self")
    placed = [attrs.evolve(p, monitor_origin=cgroup_in(p.hierarchy, own)) for p in placed]
    # Recorded before moving: the removal undo brings the monitor back to where it was.
    _update(ctx, plugin, placed)
    for p in placed:
        if p.monitor is not None:
            move_self(p, p.monitor)
    return placed


def attach_init(ctx: HostContext, plugin: str, pid: int) -> None:
    """Move the init child into its cgroup in each hierarchy (it has not unshared its cgroupns yet)."""
    for p in from_record(ctx.records.get(plugin)):
        fs.write(p.path(p.init, "cgroup.procs"), str(pid))

