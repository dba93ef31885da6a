"""The start of a container, as far as cgroups go: create, limit, delegate, move the monitor and init.

The cgroups of every running driver are created in one go, so that a name collision gives the same
suffix in all hierarchies, v1 and v2 alike; each driver then applies its own limits. The record of
what was placed (a :class:`CgroupRecord` among ``ctx.state_records``) is kept up to date at every
step, and the removal undo reads it when it runs, so it also removes what was added after creation
(an inner cgroup).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from collections.abc import Mapping

import attrs

from lxcframe import idmap
from lxcframe.context import HostContext
from lxcframe.plugins.cgroup import automount, delegated, fs
from lxcframe.plugins.cgroup.delegate import delegate
from lxcframe.plugins.cgroup.drivers import Driver
from lxcframe.plugins.cgroup.layout import Layout
from lxcframe.plugins.cgroup.naming import base_cgroups, cgroup_in, read_proc_cgroup
from lxcframe.plugins.cgroup.placement import (
    CgroupRecord,
    Placed,
    add_inner,
    create,
    from_record,
    move_self,
)
from lxcframe.plugins.cgroup.runtime import cleanup
from lxcframe.plugins.cgroup.settings import CgroupSettings


def _remove_recorded(ctx: HostContext) -> None:
    problems = cleanup(from_record(ctx.state_records.get(CgroupRecord)))
    if problems:
        raise OSError(errno.EBUSY, "; ".join(problems))


def _update(ctx: HostContext, placed: list[Placed]) -> None:
    ctx.state_records.put(CgroupRecord(tuple(placed)))


def prepare(ctx: HostContext, layout: Layout, running: Mapping[str, Driver]) -> None:
    """``pre-start``: the cgroups of the running drivers exist, limited, delegated; the monitor moved."""
    kinds = {driver.kind for driver in running.values()}
    hierarchies = tuple(h for h in layout.hierarchies if h.kind in kinds)
    if not hierarchies:
        return
    config = ctx.plan.config  # for the id map, idmap's to decide
    settings = ctx.plan.part(CgroupSettings)
    bases = base_cgroups(hierarchies, settings.relative) if os.geteuid() == 0 else delegated.user_bases(hierarchies)
    placed = create(hierarchies, bases, settings, ctx.name, with_monitor=not ctx.monitor_is_caller)
    try:
        _update(ctx, placed)
    except BaseException:
        cleanup(placed)  # nothing undoes them yet
        raise
    ctx.undo.push("remove the cgroups", functools.partial(_remove_recorded, ctx))
    for driver in running.values():
        own = driver.own(placed)
        if own:
            driver.prepare(ctx, own, running)
    if settings.inner:
        # After the limits: a v1 devices cgroup takes "a" rules only while it has no children.
        placed = [add_inner(p, settings.inner) for p in placed]
        _update(ctx, placed)
    if idmap.config_entries(config) and os.geteuid() == 0:  # a non-root caller's: at attach_init
        uid, gid = idmap.container_root(config)
        for p in placed:
            delegate(p.kind, p.path(p.init), uid, gid)
    if not ctx.monitor_is_caller:
        placed = _move_monitor(ctx, placed)
    ctx.handover.send(automount.mounts_for_child(placed))


def _move_monitor(ctx: HostContext, placed: list[Placed]) -> list[Placed]:
    own = read_proc_cgroup("self")
    placed = [attrs.evolve(p, monitor_origin=cgroup_in(p.hierarchy, own)) for p in placed]
    # Recorded before moving: the removal undo brings the monitor back to where it was.
    _update(ctx, placed)
    for p in placed:
        if p.monitor is not None:
            move_self(p, p.monitor)
    return placed


def attach_init(ctx: HostContext, pid: int) -> None:
    """Move the init child into its cgroup in each hierarchy (it has not unshared its cgroupns yet)."""
    placed = from_record(ctx.state_records.get(CgroupRecord))
    for p in placed:
        fs.write(p.path(p.init, "cgroup.procs"), str(pid))
    if os.geteuid() != 0 and idmap.config_entries(ctx.plan.config):
        # Given away only now: once the container's root owns cgroup.procs, the caller cannot write it.
        delegated.delegate_as_user(ctx.plan.config, [(p.kind, p.path(p.init)) for p in placed])


def join_cgroups_of(layout: Layout, pid: int) -> None:
    """Move this process into ``pid``'s cgroup of every usable hierarchy where it is elsewhere."""
    entries, own = read_proc_cgroup(pid), read_proc_cgroup(os.getpid())
    for hierarchy in layout.hierarchies:
        try:
            cgroup = cgroup_in(hierarchy, entries)
        except LookupError:
            continue  # a hierarchy the other process is in nowhere (it lives in another cgroup namespace)
        with contextlib.suppress(LookupError):
            if cgroup_in(hierarchy, own) == cgroup:
                continue  # already there: a write would cost ~1 ms on a cgroup1 hierarchy for nothing
        fs.write(os.path.join(hierarchy.path(cgroup), "cgroup.procs"), str(os.getpid()))
