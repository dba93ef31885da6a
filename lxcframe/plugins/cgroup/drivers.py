"""The cgroup drivers, in a registry keyed by name: what each is for and which hierarchies it drives.

As hatch registers its builders (a mapping from name to class, each class naming itself), the
``cgroup`` plugin knows its drivers through :data:`DRIVERS`: ``v1`` drives every cgroup v1
hierarchy, ``v2`` the unified cgroup2 tree. The detected layout decides which of them have anything
to drive; an operator can switch one off by name (:mod:`.selection`). Placement is common to all
(:mod:`.start`); a driver adds what only its kind of hierarchy has: its limit keys, controllers,
freezing and killing.

A driver is an immutable value over the (cached) layout, cheap to build from any thread. What runs
on a started container (freeze, kill) works from the record of what was placed, without a layout.
"""

from __future__ import annotations

import abc
import errno
import os
import signal as signals
from collections.abc import Callable, Mapping
from functools import partial
from typing import ClassVar

import attrs

from lxcframe import idmap
from lxcframe import state as st
from lxcframe.config.model import ContainerConfig
from lxcframe.context import HostContext
from lxcframe.plugins.cgroup import device_program, device_record, device_rules, limits, runtime
from lxcframe.plugins.cgroup.controllers import enable_controllers
from lxcframe.plugins.cgroup.delegate import v2_files
from lxcframe.plugins.cgroup.layout import V1, V2, Hierarchy, Layout
from lxcframe.plugins.cgroup.naming import cgroup_in, read_proc_cgroup
from lxcframe.plugins.cgroup.placement import PLUGIN, Placed
from lxcframe.plugins.cgroup.settings import CgroupSettings
from lxcframe.probe import Probe

#: Freezes (``True``) or thaws the container; what :func:`runtime.kill_frozen` takes.
SetFrozen = Callable[[bool], None]
#: How a driver freezes and thaws a container, and tells whether it is frozen.
Freezer = tuple[SetFrozen, Callable[[], bool]]


def qualified_name(driver: str) -> str:
    """``cgroup.NAME``: the driver's row in ``lxcframe check`` and the disabled plugin name that
    switches it off (``-p no:cgroup.v2``)."""
    return f"{PLUGIN}.{driver}"


@attrs.frozen
class Driver(abc.ABC):
    """What every driver declares and does; subclasses fill in their kind of hierarchy."""

    #: Its name in the registry, in ``[cgroup] drivers`` and in ``cgroup.NAME`` disable names.
    name: ClassVar[str]
    kind: ClassVar[str]
    #: What it is for, as ``lxcframe check`` shows it.
    purpose: ClassVar[str]
    #: The config keys of its limits (``lxc.cgroup.`` for v1, ``lxc.cgroup2.`` for v2).
    key_prefix: ClassVar[str]
    #: Why it has nothing to do where no hierarchy of its kind is mounted.
    nothing_mounted: ClassVar[str]

    layout: Layout

    @property
    def hierarchies(self) -> tuple[Hierarchy, ...]:
        return tuple(h for h in self.layout.hierarchies if h.kind == self.kind)

    def unavailable_reason(self) -> str | None:
        return None if self.hierarchies else self.nothing_mounted

    def probe(self) -> Probe:
        reason = self.unavailable_reason()
        if reason is not None:
            return Probe(qualified_name(self.name), False, f"layout {self.layout.mode}: {reason}")
        own = _own_entries()
        where = [f"{h.display} at {h.mountpoint} (this process: {_own_cgroup(h, own)})" for h in self.hierarchies]
        return Probe(qualified_name(self.name), True, f"layout {self.layout.mode}; {self.details(where)}")

    @abc.abstractmethod
    def details(self, where: list[str]) -> str:
        """What ``lxcframe check`` says about the hierarchies it drives (``where``: each one's place)."""

    @abc.abstractmethod
    def problems(self, config: ContainerConfig, running: Mapping[str, Driver]) -> list[str]:
        """What in ``config`` this driver cannot apply (``running``: every driver that runs)."""

    @abc.abstractmethod
    def prepare(self, ctx: HostContext, placed: list[Placed], running: Mapping[str, Driver]) -> None:
        """``pre-start``, once the cgroups of every running driver exist: limits and controllers."""

    # --- a started container, from the record of what was placed ------------------------------------

    @classmethod
    def own(cls, placed: list[Placed]) -> list[Placed]:
        return [p for p in placed if p.kind == cls.kind]

    @classmethod
    @abc.abstractmethod
    def freezer(cls, placed: list[Placed]) -> Freezer | None:
        """How to freeze and thaw the container, and to tell whether it is frozen; ``None`` if this
        driver cannot."""

    @classmethod
    @abc.abstractmethod
    def kill(cls, placed: list[Placed], signal: int) -> bool:
        """Signal every process of the container so that none escapes; ``False`` if nothing of this
        driver's kind was placed."""

    @classmethod
    @abc.abstractmethod
    def item_cgroups(cls, placed: list[Placed], controller: str) -> list[Placed]:
        """The container's cgroups of this driver's kind that hold the files of ``controller``
        (``pids`` for ``pids.max``), where ``get_cgroup_item``/``set_cgroup_item`` look for a key."""


class V1Driver(Driver):
    name = "v1"
    kind = V1
    purpose = "every cgroup v1 hierarchy: lxc.cgroup.<controller>.<file> limits, the freezer"
    key_prefix = limits.V1_PREFIX
    nothing_mounted = "no writable cgroup v1 hierarchy is mounted"

    def details(self, where: list[str]) -> str:
        controllers = ", ".join(c for h in self.hierarchies for c in h.controllers) or "none"
        return f"usable controllers: {controllers}; " + "; ".join(where)

    def problems(self, config: ContainerConfig, running: Mapping[str, Driver]) -> list[str]:
        return limits.v1_problems(config, self.layout, V2Driver.name in running)

    def prepare(self, ctx: HostContext, placed: list[Placed], running: Mapping[str, Driver]) -> None:
        config = ctx.plan.config
        found = limits.v1_limits(config)
        if limits.left_to_cgroup2(config, self.layout.v1_controllers, V2Driver.name in running):
            found = [lim for lim in found if not lim.is_device_rule]
            ctx.log.info("lxc.cgroup.devices rules left out: no v1 hierarchy has devices, the cgroup2 rules govern")
        limits.apply_v1(placed, found)

    @classmethod
    def freezer(cls, placed: list[Placed]) -> Freezer | None:
        found = runtime.v1_freezer(placed)
        if found is None:
            return None
        return partial(runtime.v1_set_frozen, found), partial(runtime.v1_is_frozen, found)

    @classmethod
    def kill(cls, placed: list[Placed], signal: int) -> bool:
        own = cls.own(placed)
        if not own:
            return False
        freezer = cls.freezer(own)
        runtime.kill_frozen(own, signal, freezer[0] if freezer else None)
        return True

    @classmethod
    def item_cgroups(cls, placed: list[Placed], controller: str) -> list[Placed]:
        return [p for p in cls.own(placed) if controller in p.controllers]


class V2Driver(Driver):
    name = "v2"
    kind = V2
    purpose = ("the unified cgroup2 tree: lxc.cgroup2.<file> limits, controllers handed down, "
               "cgroup.freeze and cgroup.kill")
    key_prefix = limits.V2_PREFIX
    nothing_mounted = "no writable cgroup2 filesystem is mounted"

    def details(self, where: list[str]) -> str:
        unified = self.hierarchies[0]
        return (f"{where[0]}; controllers it can hand down: {' '.join(unified.controllers) or 'none'}; "
                f"{_v2_features(unified)}; delegated files: {' '.join(v2_files())}")

    def problems(self, config: ContainerConfig, running: Mapping[str, Driver]) -> list[str]:
        problems = limits.v2_problems(config, self.hierarchies[0])
        try:
            device_rules.fold(device_rules.device_limits(limits.v2_limits(config)))
        except ValueError as err:
            problems.append(str(err))
        return problems

    def prepare(self, ctx: HostContext, placed: list[Placed], running: Mapping[str, Driver]) -> None:
        # The limits stay read here, in the monitor, as the v1 driver's are.
        config = ctx.plan.config
        unified = placed[0]
        found = limits.v2_limits(config)
        devices = device_rules.device_limits(found)
        wanted = {lim.controller for lim in found if lim.controller in unified.controllers}
        if idmap.config_entries(config):
            wanted |= set(unified.controllers)  # a delegated container manages them itself
        enable_controllers(unified, wanted, os.path.dirname(unified.payload))
        limits.apply_v2(unified, [lim for lim in found if lim not in devices])
        if devices:
            _attach_devices(ctx, unified, devices)
        if ctx.plan.part(CgroupSettings).inner:
            # The inner cgroup (made next, below the payload) needs them handed down once more.
            enable_controllers(unified, wanted, unified.payload)

    @classmethod
    def freezer(cls, placed: list[Placed]) -> Freezer | None:
        unified = runtime.unified(placed)
        if unified is None or not runtime.v2_can_freeze(unified):
            return None
        return partial(runtime.v2_set_frozen, unified), partial(runtime.v2_is_frozen, unified)

    @classmethod
    def kill(cls, placed: list[Placed], signal: int) -> bool:
        unified = runtime.unified(placed)
        if unified is None:
            return False
        # cgroup.kill takes the whole tree in one write: nothing can fork its way out meanwhile.
        if signal == signals.SIGKILL and runtime.v2_kill(unified):
            return True
        freezer = cls.freezer(placed)
        runtime.kill_frozen([unified], signal, freezer[0] if freezer else None)
        return True

    @classmethod
    def item_cgroups(cls, placed: list[Placed], controller: str) -> list[Placed]:
        # "cgroup" is cgroup2's core interface (cgroup.max.depth, cgroup.events), in every cgroup.
        unified = runtime.unified(placed)
        if unified is None or (controller != "cgroup" and controller not in unified.controllers):
            return []
        return [unified]


#: Every driver by name. The order is the order of preference on a started container: cgroup2
#: first, whose cgroup.freeze and cgroup.kill act on the whole tree in one write (and a task it
#: froze can still be killed), then the v1 freezer.
DRIVERS: dict[str, type[Driver]] = {cls.name: cls for cls in (V2Driver, V1Driver)}


def _attach_devices(ctx: HostContext, unified: Placed, devices: list[limits.Limit]) -> None:
    """Attach the device program before init joins the payload cgroup: it holds from init's first exec.
    Where devices is also a v1 controller (a hybrid host) its lxc.cgroup.devices rules hold as well."""
    try:
        policy = device_rules.fold(devices)
    except ValueError as err:  # a /dev path that went away since the config was checked
        raise OSError(errno.EINVAL, str(err)) from None
    directory = unified.path(unified.payload)
    try:
        prog_id = device_program.attach(directory, policy)
    except OSError as err:
        first = devices[0]
        raise OSError(err.errno or errno.EIO, f"{first.where}: {first.key}: cannot attach the cgroup2 device "
                      f"program to {directory}: {err.strerror}") from None
    # What a change of the rules while it runs folds its rule into, and the program it replaces.
    runtime_dir = st.runtime_dir(ctx.plan.lxcpath, ctx.plan.name)
    ctx.undo.push("forget the device rule record", partial(device_record.forget, runtime_dir))
    device_record.save(runtime_dir, device_record.DeviceRecord(policy, prog_id))
    ctx.log.info("cgroup2 device program attached", program=prog_id, rules=len(devices),
                 exceptions=len(policy.exceptions), default="allow" if policy.allow_by_default else "deny")


def _own_entries() -> list[tuple[str, str]]:
    try:
        return read_proc_cgroup("self")
    except OSError:
        return []


def _own_cgroup(hierarchy: Hierarchy, entries: list[tuple[str, str]]) -> str:
    try:
        return cgroup_in(hierarchy, entries)
    except LookupError:
        return "?"


def _v2_features(unified: Hierarchy) -> str:
    # The root cgroup has neither file; any other cgroup shows what this kernel offers.
    sample = next((os.path.join(unified.mountpoint, d) for d in sorted(os.listdir(unified.mountpoint))
                   if os.path.isdir(os.path.join(unified.mountpoint, d))), None)
    if sample is None:
        return "cgroup.kill/cgroup.freeze: unknown (no cgroup below the root to look at)"
    found = [f"{leaf}: {'yes' if os.path.exists(os.path.join(sample, leaf)) else 'no'}"
             for leaf in ("cgroup.kill", "cgroup.freeze")]
    return ", ".join(found)
