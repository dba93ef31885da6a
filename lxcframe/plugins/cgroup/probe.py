"""What ``lxcframe check`` shows for cgroups: the layout once, then each driver with what it would drive.

Registration hooks see no caller, so a driver switched off by name is still probed here: the rows
say what this host offers, not what one command would use.
"""

from __future__ import annotations

from lxcframe.plugins.cgroup.drivers import DRIVERS, qualified_name
from lxcframe.plugins.cgroup.layout import current_layout
from lxcframe.plugins.cgroup.mountinfo import cgroup_layout
from lxcframe.probe import Probe, never_raises


@never_raises("cgroup")
def probe_layout() -> Probe:
    """cgroup layout: unified, hybrid or legacy, with controllers."""
    layout = cgroup_layout()
    if layout.mode == "none":
        return Probe("cgroup", False, "none: no cgroup or cgroup2 filesystem mounted")
    parts = [layout.mode]
    if layout.v1_mounts:
        v1 = f"v1 controllers: {','.join(layout.v1_controllers) or '(none)'}"
        if layout.v1_named:
            v1 += f"; v1 named hierarchies: {','.join(layout.v1_named)}"
        parts.append(v1)
    if layout.unified_mount is not None:
        parts.append(f"cgroup2 at {layout.unified_mount} "
                     f"(controllers: {' '.join(layout.unified_controllers) or '(none)'})")
    return Probe("cgroup", True, "; ".join(parts))


def probe_drivers() -> list[Probe]:
    """One row per driver (``cgroup.v1``, ``cgroup.v2``): what it drives here, or why nothing."""
    try:
        layout = current_layout()
    except OSError as err:
        return [Probe(qualified_name(name), False, f"probe failed: cannot read the mount table: {err}")
                for name in DRIVERS]
    found = []
    for name, driver_class in DRIVERS.items():
        guarded = never_raises(qualified_name(name))(driver_class(layout).probe)
        found.append(guarded())
    return sorted(found, key=lambda probe: probe.name)


#: The row of cgroup2 device control.
DEVICES_ROW = "cgroup.bpf_devices"


@never_raises(DEVICES_ROW)
def probe_devices() -> Probe:
    """Whether lxc.cgroup2.devices rules can be enforced: a cgroup2 mount and a loadable device program."""
    from lxcframe.plugins.cgroup.device_program import unavailable_reason

    layout = current_layout()
    if layout.v2 is None:
        return Probe(DEVICES_ROW, False, f"layout {layout.mode}: no cgroup2 mount to attach a device program to")
    reason = unavailable_reason()
    if reason is not None:
        return Probe(DEVICES_ROW, False, reason)
    also = "; devices is a v1 controller too: its lxc.cgroup.devices rules hold as well" \
        if "devices" in layout.v1_controllers else ""
    return Probe(DEVICES_ROW, True, "lxc.cgroup2.devices rules: a BPF_PROG_TYPE_CGROUP_DEVICE program loads, "
                 f"attached to the payload cgroup at {layout.v2.mountpoint}{also}")


def probes() -> list[Probe]:
    return [probe_layout(), *probe_drivers(), probe_devices()]
