"""Limit keys: ``lxc.cgroup.<controller>.<file>`` (v1) and ``lxc.cgroup2.<file>`` (the unified tree).

Every occurrence of a key is written, in config order, as LXC does. cgroup2 has no device files: its
``devices.allow``/``devices.deny`` rules become a device program (:mod:`.device_rules`). The v1 ones
go last (LXC's second pass), and among them the ``a`` entries that change the default first: the
config keeps each key's values in order but not the order between two keys, and "deny everything,
then allow a few" is what configs mean. A ``/dev/…`` path is turned into ``c|b MAJOR:MINOR ACCESS``.
"""

from __future__ import annotations

import errno
import os
import stat

import attrs

from lxcframe.config.model import ContainerConfig
from lxcframe.plugins.cgroup import fs
from lxcframe.plugins.cgroup.layout import Hierarchy, Layout
from lxcframe.plugins.cgroup.placement import Placed
from lxcframe.plugins.cgroup.settings import PLACEMENT_KEYS, V1_PREFIX, V2_PREFIX

_DEVICE_FILES = ("devices.allow", "devices.deny")


@attrs.frozen
class Limit:
    key: str
    #: The cgroupfs file written, e.g. ``memory.limit_in_bytes``.
    file: str
    #: Its controller (the file's first part); ``cgroup`` for cgroup2's core files.
    controller: str
    value: str
    path: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def is_device_rule(self) -> bool:
        return self.file in _DEVICE_FILES


def limits_of(config: ContainerConfig, prefix: str) -> list[Limit]:
    found = []
    for key in config.keys_under(prefix):
        if key in PLACEMENT_KEYS:
            continue
        file = key[len(prefix):]
        items = config.multi.get(key) or ((config.single[key],) if key in config.single else ())
        for item in items:
            found.append(Limit(key, file, file.split(".", 1)[0], str(item.value), item.path, item.line))
    return found


def _device_order(limit: Limit) -> tuple[int, str, int]:
    whole = limit.value.split()[:1] == ["a"]
    return (0 if whole else 1, limit.path, limit.line)


def v1_limits(config: ContainerConfig) -> list[Limit]:
    found = limits_of(config, V1_PREFIX)
    others = sorted((lim for lim in found if not lim.is_device_rule), key=lambda lim: (lim.path, lim.line))
    devices = sorted((lim for lim in found if lim.is_device_rule), key=_device_order)
    return others + devices


def v2_limits(config: ContainerConfig) -> list[Limit]:
    """Every ``lxc.cgroup2.*`` limit, in config order; the device rules among them are compiled into a
    device program (:mod:`.device_rules`) instead of being written."""
    return sorted(limits_of(config, V2_PREFIX), key=lambda lim: (lim.path, lim.line))


def device_rule(value: str) -> str:
    """``/dev/PATH ACCESS`` → ``c|b MAJOR:MINOR ACCESS``; other rules pass unchanged."""
    if not value.startswith("/"):
        return value
    words = value.split()
    if len(words) < 2:
        raise ValueError(f"{value!r}: expected '/dev/PATH ACCESS' (e.g. '/dev/null rwm')")
    path, access = words[0], words[1]
    try:
        info = os.stat(path)
    except OSError as err:
        raise ValueError(f"{path}: {err.strerror}") from None
    if stat.S_ISCHR(info.st_mode):
        kind = "c"
    elif stat.S_ISBLK(info.st_mode):
        kind = "b"
    else:
        raise ValueError(f"{path} is not a character or block device")
    return f"{kind} {os.major(info.st_rdev)}:{os.minor(info.st_rdev)} {access}"


def left_to_cgroup2(config: ContainerConfig, v1_controllers: tuple[str, ...], v2_runs: bool) -> bool:
    """Whether the ``lxc.cgroup.devices.*`` rules are left out: no v1 hierarchy has devices here, and the
    cgroup2 device rules the config carries as well govern (LXC's common.conf carries both kinds; LXC
    ignores v1 limits on a pure cgroup2 host). Without cgroup2 device rules they are refused."""
    if not v2_runs or "devices" in v1_controllers:
        return False
    return any(lim.is_device_rule for lim in limits_of(config, V2_PREFIX))


def v1_problems(config: ContainerConfig, layout: Layout, v2_runs: bool = False) -> list[str]:
    problems = []
    controllers = layout.v1_controllers
    skip_devices = left_to_cgroup2(config, controllers, v2_runs)
    for limit in v1_limits(config):
        if skip_devices and limit.is_device_rule:
            continue
        if "." not in limit.file:
            problems.append(f"{limit.where}: {limit.key}: expected {V1_PREFIX}<controller>.<file>")
        elif limit.controller not in controllers:
            problems.append(f"{limit.where}: {limit.key}: no cgroup v1 hierarchy has the controller "
                            f"{limit.controller!r} on this host (v1 controllers: {', '.join(controllers) or 'none'})")
        elif limit.is_device_rule:
            try:
                device_rule(limit.value)
            except ValueError as err:
                problems.append(f"{limit.where}: {limit.key}: {err}")
    return problems


def v2_problems(config: ContainerConfig, unified: Hierarchy) -> list[str]:
    """What is wrong with the cgroup2 limits other than device rules (:func:`.device_rules.fold` checks those)."""
    problems = []
    for limit in v2_limits(config):
        if limit.is_device_rule:
            continue
        if "." not in limit.file:
            problems.append(f"{limit.where}: {limit.key}: expected {V2_PREFIX}<controller>.<file>")
            continue
        if limit.controller == "cgroup" or limit.controller in unified.controllers:
            continue
        # Files every cgroup has without a controller (cpu.stat, *.pressure) exist at the root too.
        if os.path.exists(os.path.join(unified.mountpoint, limit.file)):
            continue
        problems.append(f"{limit.where}: {limit.key}: the cgroup2 hierarchy offers no controller "
                        f"{limit.controller!r} here (it offers: {', '.join(unified.controllers) or 'none'})")
    return problems


def _write(placed: Placed, limit: Limit) -> None:
    value = device_rule(limit.value) if limit.is_device_rule else limit.value
    target = placed.path(placed.payload, limit.file)
    try:
        fs.write(target, value)
    except OSError as err:
        code = err.errno or errno.EIO
        raise OSError(code, f"{limit.where}: {limit.key} = {limit.value!r}: {err.strerror}", target) from None


def apply_v1(placed: list[Placed], limits: list[Limit]) -> None:
    """Write the v1 limits into the payload cgroup of each controller's hierarchy."""
    for limit in limits:
        owner = next((p for p in placed if limit.controller in p.controllers), None)
        if owner is None:
            raise OSError(errno.ENOENT, f"{limit.where}: {limit.key}: no cgroup v1 hierarchy has the controller "
                          f"{limit.controller!r}")
        _write(owner, limit)


def apply_v2(unified: Placed, limits: list[Limit]) -> None:
    for limit in limits:
        _write(unified, limit)
