"""``linux.cgroupsPath`` and ``linux.resources``: the cgroup plugin's placement and limit keys.

``cgroupsPath`` is honoured literally, as podman's ``stats``/``top`` and containerd's metrics read the
cgroups there: an absolute path is taken from the root of every hierarchy (``lxc.cgroup.relative = 0``:
the base is init's cgroup, the root), a relative one from the runtime's own cgroup
(``lxc.cgroup.relative = 1``). It is ``lxc.cgroup.dir.container``; the monitor's cgroup is its sibling
``lxc.monitor.NAME``, as LXC names it.

Each limit goes to the hierarchy that has its controller on this host: a v1 file
(``lxc.cgroup.memory.limit_in_bytes``) where a v1 hierarchy has it, else the cgroup2 one
(``lxc.cgroup2.memory.max``), converted as runc converts (``cpu.shares`` to ``cpu.weight``…).
"""

from __future__ import annotations

import posixpath
from typing import Any

from lxcframe.oci.bundle_fields import Translation

#: The device nodes every container may use whatever ``linux.resources.devices`` says (runtime-spec's
#: default devices, as runc allows them after the bundle's rules).
DEFAULT_DEVICE_RULES = ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm",
                        "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm")
FIELD = "linux.resources"


class _Limits:
    """Where each controller's files go on this host."""

    def __init__(self, out: Translation) -> None:
        from lxcframe.plugins.cgroup.layout import current_layout

        self.out = out
        self.layout = current_layout()

    def version(self, controller: str) -> str | None:
        if self.layout.v1_for(controller) is not None:
            return "v1"
        unified = self.layout.v2
        if unified is not None and controller in unified.controllers:
            return "v2"
        return None

    def put(self, controller: str, field: str, v1: tuple[str, str] | None, v2: tuple[str, str] | None) -> None:
        """Set ``(file, value)`` of the hierarchy that has ``controller``; None: that one has no such file."""
        version = self.version(controller)
        if version is None:
            self.out.fail(field, f"no cgroup hierarchy of this host has the {controller} controller")
            return
        chosen = v1 if version == "v1" else v2
        if chosen is None:
            self.out.fail(field, f"not supported on cgroup {version} (the {controller} controller is there)")
            return
        prefix = "lxc.cgroup." if version == "v1" else "lxc.cgroup2."
        self.out.add(prefix + chosen[0], chosen[1], field)


def translate(out: Translation, linux: dict[str, Any]) -> None:
    _placement(out, linux)
    resources = out.obj(linux, "resources", "linux")
    if not resources:
        return
    limits = _Limits(out)
    _memory(out, limits, out.obj(resources, "memory", FIELD))
    _cpu(out, limits, out.obj(resources, "cpu", FIELD))
    pids = out.obj(resources, "pids", FIELD)
    limit = out.integer(pids, "limit", f"{FIELD}.pids")
    if limit is not None:
        text = str(limit) if limit > 0 else "max"
        limits.put("pids", f"{FIELD}.pids.limit", ("pids.max", text), ("pids.max", text))
    out.refuse_unknown(pids, f"{FIELD}.pids", ("limit",))
    _block_io(out, limits, out.obj(resources, "blockIO", FIELD))
    _hugepages(out, limits, resources)
    _network(out, limits, out.obj(resources, "network", FIELD))
    for name, value in out.obj(resources, "unified", FIELD).items():
        at = f"{FIELD}.unified.{name}"
        if not isinstance(value, str):
            out.fail(at, "expected a string")
        elif limits.layout.v2 is None:
            out.fail(at, "this host has no cgroup2 hierarchy")
        else:
            out.add(f"lxc.cgroup2.{name}", value, at)
    _devices(out, limits, resources)
    out.refuse_unknown(resources, FIELD, ("memory", "cpu", "pids", "blockIO", "hugepageLimits", "network",
                                          "unified", "devices"))


def _placement(out: Translation, linux: dict[str, Any]) -> None:
    path = out.string(linux, "cgroupsPath", "linux")
    if not path:
        return
    field = "linux.cgroupsPath"
    if ":" in path:
        out.fail(field, f"{path!r}: systemd's slice:prefix:name form is not supported (lxcframe places cgroups "
                 "on cgroupfs)")
        return
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        out.fail(field, f"{path!r}: expected a cgroup path without '..'")
        return
    relative = "/".join(parts)
    parent, name = posixpath.split(relative)
    out.add("lxc.cgroup.relative", "0" if path.startswith("/") else "1", field)
    out.add("lxc.cgroup.dir.container", relative, field)
    out.add("lxc.cgroup.dir.monitor", posixpath.join(parent, f"lxc.monitor.{name}"), field)


def _memory(out: Translation, limits: _Limits, memory: dict[str, Any]) -> None:
    at = f"{FIELD}.memory"
    limit = out.integer(memory, "limit", at)
    if limit is not None:
        limits.put("memory", f"{at}.limit", ("memory.limit_in_bytes", str(limit)),
                   ("memory.max", "max" if limit < 0 else str(limit)))
    reservation = out.integer(memory, "reservation", at)
    if reservation is not None:
        limits.put("memory", f"{at}.reservation", ("memory.soft_limit_in_bytes", str(reservation)),
                   ("memory.low", "max" if reservation < 0 else str(reservation)))
    swap = out.integer(memory, "swap", at)
    if swap is not None:
        # The spec's swap is memory plus swap, as v1's memsw; cgroup2 counts the swap alone (runc's conversion).
        if swap < 0:
            v2 = "max"
        elif limit is None or limit < 0:
            v2 = None
        else:
            v2 = str(max(swap - limit, 0))
        limits.put("memory", f"{at}.swap", ("memory.memsw.limit_in_bytes", str(swap)),
                   None if v2 is None else ("memory.swap.max", v2))
    swappiness = out.uint(memory, "swappiness", at, 64)
    if swappiness is not None:
        if swappiness > 100:
            out.fail(f"{at}.swappiness", f"{swappiness}: expected 0 to 100")
        else:
            limits.put("memory", f"{at}.swappiness", ("memory.swappiness", str(swappiness)), None)
    if out.boolean(memory, "disableOOMKiller", at):
        limits.put("memory", f"{at}.disableOOMKiller", ("memory.oom_control", "1"), None)
    out.refuse_present(memory, "kernel", at, "not supported: kernel memory limits are deprecated (runc ignores "
                       "them too, the kernel no longer has them)")
    out.refuse_present(memory, "kernelTCP", at, "not supported: kernel memory limits are deprecated")
    out.refuse_unknown(memory, at, ("limit", "reservation", "swap", "swappiness", "disableOOMKiller",
                                    "kernel", "kernelTCP", "useHierarchy", "checkBeforeUpdate"))
    if out.boolean(memory, "useHierarchy", at) is False:
        out.fail(f"{at}.useHierarchy", "not supported: the kernel keeps memory.use_hierarchy on")


def _cpu(out: Translation, limits: _Limits, cpu: dict[str, Any]) -> None:
    at = f"{FIELD}.cpu"
    shares = out.uint(cpu, "shares", at, 64)
    if shares is not None:
        # runc's conversion of 2..262144 shares to a 1..10000 weight.
        weight = 1 + ((max(shares, 2) - 2) * 9999) // 262142 if shares else 100
        limits.put("cpu", f"{at}.shares", ("cpu.shares", str(shares)), ("cpu.weight", str(weight)))
    quota = out.integer(cpu, "quota", at)
    period = out.uint(cpu, "period", at, 64)
    if period is not None:
        limits.put("cpu", f"{at}.period", ("cpu.cfs_period_us", str(period)),
                   None if quota is not None else ("cpu.max", f"max {period}"))
    if quota is not None:
        v2_quota = "max" if quota < 0 else str(quota)
        limits.put("cpu", f"{at}.quota", ("cpu.cfs_quota_us", str(quota)),
                   ("cpu.max", f"{v2_quota} {period or 100000}"))
    burst = out.uint(cpu, "burst", at, 64)
    if burst is not None:
        limits.put("cpu", f"{at}.burst", ("cpu.cfs_burst_us", str(burst)), ("cpu.max.burst", str(burst)))
    for name, v1_file in (("realtimeRuntime", "cpu.rt_runtime_us"), ("realtimePeriod", "cpu.rt_period_us")):
        value = out.integer(cpu, name, at)
        if value is not None:
            limits.put("cpu", f"{at}.{name}", (v1_file, str(value)), None)
    idle = out.integer(cpu, "idle", at)
    if idle is not None:
        limits.put("cpu", f"{at}.idle", None, ("cpu.idle", str(idle)))
    for name in ("cpus", "mems"):
        cpus = out.string(cpu, name, at)
        if cpus:
            limits.put("cpuset", f"{at}.{name}", (f"cpuset.{name}", cpus), (f"cpuset.{name}", cpus))
    out.refuse_unknown(cpu, at, ("shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod",
                                 "idle", "cpus", "mems"))


def _block_io(out: Translation, limits: _Limits, block: dict[str, Any]) -> None:
    at = f"{FIELD}.blockIO"
    weight = out.uint(block, "weight", at, 16)
    if weight is not None:
        limits.put("blkio", f"{at}.weight", ("blkio.weight", str(weight)), None)
        if limits.version("blkio") is None:
            limits.put("io", f"{at}.weight", None, ("io.weight", str(weight)))
    for name, v1_file in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                          ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                          ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                          ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for item_at, item in out.objects(block, name, at):
            major, minor = out.uint(item, "major", item_at, 64), out.uint(item, "minor", item_at, 64)
            rate = out.uint(item, "rate", item_at, 64)
            out.refuse_unknown(item, item_at, ("major", "minor", "rate"))
            if major is None or minor is None or rate is None:
                out.fail(item_at, "major, minor and rate are required")
                continue
            limits.put("blkio", item_at, (v1_file, f"{major}:{minor} {rate}"), None)
    out.refuse_unknown(block, at, ("weight", "throttleReadBpsDevice", "throttleWriteBpsDevice",
                                   "throttleReadIOPSDevice", "throttleWriteIOPSDevice"))


def _hugepages(out: Translation, limits: _Limits, resources: dict[str, Any]) -> None:
    for at, item in out.objects(resources, "hugepageLimits", FIELD):
        size = out.string(item, "pageSize", at)
        limit = out.uint(item, "limit", at, 64)
        out.refuse_unknown(item, at, ("pageSize", "limit"))
        if not size or limit is None or not size[:-2].isdigit() or size[-2:] not in ("KB", "MB", "GB"):
            out.fail(at, "pageSize (such as 2MB) and limit are required")
            continue
        limits.put("hugetlb", at, (f"hugetlb.{size}.limit_in_bytes", str(limit)), (f"hugetlb.{size}.max", str(limit)))


def _network(out: Translation, limits: _Limits, network: dict[str, Any]) -> None:
    at = f"{FIELD}.network"
    class_id = out.uint(network, "classID", at)
    if class_id is not None:
        limits.put("net_cls", f"{at}.classID", ("net_cls.classid", str(class_id)), None)
    for item_at, item in out.objects(network, "priorities", at):
        name = out.string(item, "name", item_at)
        priority = out.uint(item, "priority", item_at)
        out.refuse_unknown(item, item_at, ("name", "priority"))
        if not name or priority is None:
            out.fail(item_at, "name and priority are required")
            continue
        limits.put("net_prio", item_at, ("net_prio.ifpriomap", f"{name} {priority}"), None)
    out.refuse_unknown(network, at, ("classID", "priorities"))


def _devices(out: Translation, limits: _Limits, resources: dict[str, Any]) -> None:
    """The device cgroup rules in order, then the default devices' (which the spec says are always there)."""
    rules = out.objects(resources, "devices", FIELD)
    if not rules:
        return
    version = limits.version("devices")
    # cgroup2 has no devices controller: lxcframe's cgroup plugin turns the same rules into a device program.
    prefix = "lxc.cgroup.devices." if version == "v1" else "lxc.cgroup2.devices."
    for at, rule in rules:
        allow = out.boolean(rule, "allow", at)
        kind = out.string(rule, "type", at) or "a"
        major = out.integer(rule, "major", at, -1, 2**32 - 1)
        minor = out.integer(rule, "minor", at, -1, 2**32 - 1)
        access = out.string(rule, "access", at) or "rwm"
        out.refuse_unknown(rule, at, ("allow", "type", "major", "minor", "access"))
        if allow is None:
            out.fail(f"{at}.allow", "required")
            continue
        if kind not in ("a", "c", "b"):
            out.fail(f"{at}.type", f"{kind!r}: expected a, c or b")
            continue
        if kind == "a":
            text = "a" if sorted(access) == sorted("rwm") else f"a *:* {access}"
        else:
            text = f"{kind} {_number(major)}:{_number(minor)} {access}"
        out.add(prefix + ("allow" if allow else "deny"), text, at)
    last = rules[-1][0]
    for text in DEFAULT_DEVICE_RULES:
        out.add(prefix + "allow", text, last)


def _number(value: int | None) -> str:
    return "*" if value is None or value < 0 else str(value)
