"""Which cgroup drivers run: those the layout gives something to drive, less those switched off.

A driver is switched off by its registry name in either of two ways:

* the host config's ``[cgroup] drivers`` lists the drivers that may run (an operator's choice for
  the whole host);
* ``cgroup.NAME`` among the disabled plugin names: ``-p no:cgroup.v2``, ``Plugins(disable=
  ["cgroup.v2"])``, ``LXCFRAME_DISABLE_PLUGINS``, ``[plugins] disable``. These travel with every start
  request to whichever process runs the monitor, as plugin names do, so a library caller's choice
  holds there too.

The keys of a driver that is switched off are refused like the keys of a disabled plugin: the
container would run without them (unless the host lets such configs start, ``unhandled_keys``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs

from lxcframe.config.model import ContainerConfig
from lxcframe.frozen import frozen_mapping
from lxcframe.hostconfig import UNHANDLED_WARN, HostConfig, unhandled_opt_out
from lxcframe.plugins.cgroup import limits
from lxcframe.plugins.cgroup.drivers import DRIVERS, Driver, V1Driver, V2Driver, qualified_name
from lxcframe.plugins.cgroup.layout import Layout


class PluginsView(Protocol):
    """What the selection reads of :class:`lxcframe.plugin_manager.Plugins`."""

    host: HostConfig
    disabled: frozenset[str]
    unhandled_keys: str


@attrs.frozen
class Selection:
    #: The drivers that run, by name, in registry order.
    running: Mapping[str, Driver] = attrs.field(converter=frozen_mapping)
    #: Switched off by the operator or the caller: name -> why.
    off: Mapping[str, str] = attrs.field(converter=frozen_mapping)
    #: Nothing of their kind is mounted here: name -> why.
    idle: Mapping[str, str] = attrs.field(converter=frozen_mapping)


def switched_off(plugins: PluginsView) -> dict[str, str]:
    """The drivers switched off for these plugins, each with why (as the key refusal words it)."""
    off = {}
    host = plugins.host
    for name in DRIVERS:
        if qualified_name(name) in plugins.disabled:
            off[name] = f"is switched off ({qualified_name(name)} is disabled)"
        elif host.cgroup_drivers is not None and name not in host.cgroup_drivers:
            off[name] = f"is switched off ([cgroup] drivers = {list(host.cgroup_drivers)} in {host.path})"
    return off


def select(layout: Layout, plugins: PluginsView) -> Selection:
    off = switched_off(plugins)
    running: dict[str, Driver] = {}
    idle: dict[str, str] = {}
    for name, driver_class in DRIVERS.items():
        if name in off:
            continue
        driver = driver_class(layout)
        reason = driver.unavailable_reason()
        if reason is None:
            running[name] = driver
        else:
            idle[name] = reason
    return Selection(running, off, idle)


def problems(config: ContainerConfig, layout: Layout, plugins: PluginsView) -> list[str]:
    """What the drivers cannot apply of ``config``: each running one's own check, and every limit key
    of a driver switched off or with nothing to drive here."""
    selection = select(layout, plugins)
    found: list[str] = []
    for name, driver_class in DRIVERS.items():
        if name in selection.running:
            found += selection.running[name].problems(config, selection.running)
            continue
        if name in selection.off:
            if plugins.unhandled_keys == UNHANDLED_WARN:
                continue  # the host lets such configs start without these keys
            why = (f"the cgroup plugin's {name} driver {selection.off[name]}: the container would run "
                   f"without it{unhandled_opt_out(plugins.host)}")
        else:
            why = f"{selection.idle[name]} (layout {layout.mode}), so the cgroup plugin's {name} driver cannot apply it"
        skip_devices = name == V1Driver.name and limits.left_to_cgroup2(config, (), V2Driver.name in selection.running)
        found += [f"{limit.where}: {limit.key}: {why}" for limit in limits.limits_of(config, driver_class.key_prefix)
                  if not (skip_devices and limit.is_device_rule)]
    return found
