"""What this host is, read straight from the kernel's files, for tests whose expectations depend on it.

Deliberately independent of lxcframe's own detection (``lxcframe.plugins.cgroup.layout`` and ``.mountinfo``,
the apparmor plugin's ``host`` module): a test compares what lxcframe says with what is read here, so
a bug in the detection is not also in the expectation. The suite then tests the host it runs on —
a hybrid VM, a default Debian 12 host (pure cgroup2, often AppArmor), a legacy one — instead of
failing wherever the host differs from the one the tests were first written on.

Sources: ``/proc/self/mountinfo`` (which cgroup filesystems are mounted, and where),
``/proc/self/cgroup`` (which hierarchies this process is in), the cgroup2 root's
``cgroup.controllers``, ``/sys/kernel/security/lsm`` (the active LSMs, where securityfs is mounted)
and ``/sys/module/apparmor/parameters/enabled``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

MOUNTINFO = "/proc/self/mountinfo"
PROC_CGROUP = "/proc/self/cgroup"
LSM_LIST = "/sys/kernel/security/lsm"
APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
CGROUP_ROOT = "/sys/fs/cgroup"

#: cgroup v1 mount options that name no controller.
_NOT_CONTROLLERS = {"rw", "ro", "none", "all", "noprefix", "clone_children", "cpuset_v2_mode", "xattr",
                    "favordynmods"}


@dataclass(frozen=True)
class V1Mount:
    mountpoint: str
    #: The controllers bound to it, and ``name=X`` for a named hierarchy (as /proc/PID/cgroup lists them).
    parts: frozenset[str]
    #: Whether lxcframe can place cgroups in it: the whole tree (root ``/``), writable, first of its device.
    usable: bool

    @property
    def controllers(self) -> frozenset[str]:
        return frozenset(p for p in self.parts if not p.startswith("name="))

    @property
    def named(self) -> frozenset[str]:
        return frozenset(p[5:] for p in self.parts if p.startswith("name="))


@dataclass(frozen=True)
class CgroupFacts:
    #: ``unified`` (cgroup2 on /sys/fs/cgroup, or cgroup2 only), ``hybrid`` (v1 and cgroup2),
    #: ``legacy`` (v1 only) or ``none``.
    mode: str
    v1_mounts: tuple[V1Mount, ...] = ()
    unified_mount: str | None = None
    #: What the cgroup2 root offers (its ``cgroup.controllers``).
    unified_controllers: tuple[str, ...] = ()
    #: ``/proc/self/cgroup``: the controller field (``""`` for cgroup2) as a set of parts -> the path.
    own: dict[frozenset[str], str] = field(default_factory=dict)

    @property
    def v1(self) -> tuple[V1Mount, ...]:
        """The usable v1 hierarchies."""
        return tuple(m for m in self.v1_mounts if m.usable)

    @property
    def v1_controllers(self) -> frozenset[str]:
        return frozenset(c for m in self.v1_mounts for c in m.controllers)

    @property
    def v1_named(self) -> frozenset[str]:
        return frozenset(n for m in self.v1_mounts for n in m.named)

    def v1_with(self, controller: str) -> V1Mount | None:
        return next((m for m in self.v1 if controller in m.controllers), None)

    def has(self, controller: str) -> bool:
        """Whether lxcframe can use ``controller``: in a usable v1 hierarchy or offered by cgroup2."""
        return self.v1_with(controller) is not None or controller in self.unified_controllers

    @property
    def own_unified(self) -> str | None:
        return self.own.get(frozenset())


def _unescape(text: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def cgroups(mountinfo: str | None = None, proc_cgroup: str | None = None) -> CgroupFacts:
    """The cgroup facts of this process's mount namespace (or of the given texts)."""
    mountinfo = _read(MOUNTINFO) if mountinfo is None else mountinfo
    proc_cgroup = _read(PROC_CGROUP) if proc_cgroup is None else proc_cgroup
    v1: list[V1Mount] = []
    v2: list[tuple[str, bool]] = []  # mountpoint, usable
    devices: set[str] = set()
    for line in mountinfo.splitlines():
        before, sep, after = line.partition(" - ")
        if not sep:
            continue
        left, right = before.split(), after.split()
        if len(left) < 6 or len(right) < 3 or right[0] not in ("cgroup", "cgroup2"):
            continue
        device, root, mountpoint, options = left[2], left[3], _unescape(left[4]), left[5].split(",")
        usable = root == "/" and "ro" not in options and device not in devices
        if usable:
            devices.add(device)
        if right[0] == "cgroup2":
            v2.append((mountpoint, usable))
            continue
        parts = frozenset(o for o in right[2].split(",")
                          if o.startswith("name=") or ("=" not in o and o not in _NOT_CONTROLLERS))
        v1.append(V1Mount(mountpoint, parts, usable))
    points = [m for m, _ in v2]
    unified = next((c for c in (CGROUP_ROOT, f"{CGROUP_ROOT}/unified") if c in points), points[0] if points else None)
    if unified == CGROUP_ROOT or (v2 and not v1):
        mode = "unified"
    elif v1 and v2:
        mode = "hybrid"
    elif v1:
        mode = "legacy"
    else:
        mode = "none"
    offered: tuple[str, ...] = ()
    if unified is not None:
        try:
            offered = tuple(_read(os.path.join(unified, "cgroup.controllers")).split())
        except OSError:
            offered = ()
    own = {}
    for line in proc_cgroup.splitlines():
        _, labels, path = line.split(":", 2)
        own[frozenset(labels.split(",")) - {""}] = path
    return CgroupFacts(mode, tuple(v1), unified, offered, own)


@dataclass(frozen=True)
class LsmFacts:
    #: ``/sys/kernel/security/lsm`` split at commas; ``None`` where it cannot be read (no securityfs).
    active: tuple[str, ...] | None
    #: ``/sys/module/apparmor/parameters/enabled`` as read (stripped); ``None`` where it is missing.
    apparmor_param: str | None

    @property
    def apparmor(self) -> bool:
        """AppArmor is enforcing in this kernel: the module says ``Y`` (and the LSM list, if readable, agrees)."""
        enabled = self.apparmor_param is not None and self.apparmor_param.startswith("Y")
        if self.active is not None:
            return enabled and "apparmor" in self.active
        return enabled


def lsm() -> LsmFacts:
    try:
        active: tuple[str, ...] | None = tuple(w for w in _read(LSM_LIST).strip().split(",") if w)
    except OSError:
        active = None
    try:
        param: str | None = _read(APPARMOR_ENABLED).strip()
    except FileNotFoundError:
        param = None
    return LsmFacts(active, param)
