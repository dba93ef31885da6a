"""How cgroups are mounted: the cgroup lines of a ``/proc/PID/mountinfo`` text, classified.

This is the host's picture as ``lxcframe check`` shows it (every cgroup mount, usable or not). The
drivers' view — only the hierarchies a container can be placed in — is built on it by
:mod:`.layout`, so controller options mean the same in both.
"""

from __future__ import annotations

import os
import re

import attrs

from lxcframe.probe import read_text

#: Read at each call, so that a test can point it elsewhere.
MOUNTINFO = "/proc/self/mountinfo"

# Mount options of cgroup v1 that are not controllers (see the kernel's cgroup1_parse_param).
_V1_NON_CONTROLLER_OPTIONS = frozenset(
    {"rw", "ro", "none", "all", "noprefix", "clone_children", "cpuset_v2_mode", "xattr", "favordynmods"}
)


@attrs.frozen
class CgroupLayout:
    """How cgroups are mounted in the current mount namespace.

    ``mode`` is "unified" (cgroup2 only, or cgroup2 on /sys/fs/cgroup), "hybrid" (v1 hierarchies
    plus a cgroup2 mount), "legacy" (v1 only) or "none".
    """

    mode: str
    v1_controllers: tuple[str, ...] = ()
    v1_named: tuple[str, ...] = ()
    v1_mounts: tuple[str, ...] = ()
    unified_mount: str | None = None
    unified_controllers: tuple[str, ...] = ()


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_cgroup_layout(mountinfo: str) -> CgroupLayout:
    """Classify the cgroup mounts listed in a /proc/<pid>/mountinfo text.

    ``unified_controllers`` is left empty: reading it needs the filesystem (see :func:`cgroup_layout`).
    """
    controllers: list[str] = []
    named: list[str] = []
    v1_mounts: list[str] = []
    v2_mounts: list[str] = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        try:
            # Optional fields (shared:N ...) vary in number; " - " ends them.
            sep = fields.index("-", 6)
            mount_point = _unescape_mountinfo(fields[4])
            fstype = fields[sep + 1]
            super_options = fields[sep + 3]
        except (ValueError, IndexError):
            continue
        if fstype == "cgroup2":
            v2_mounts.append(mount_point)
        elif fstype == "cgroup":
            v1_mounts.append(mount_point)
            for option in super_options.split(","):
                if option.startswith("name="):
                    if option[5:] not in named:
                        named.append(option[5:])
                elif "=" in option or option in _V1_NON_CONTROLLER_OPTIONS:
                    continue
                elif option not in controllers:
                    controllers.append(option)

    unified_mount: str | None = None
    for candidate in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if candidate in v2_mounts:
            unified_mount = candidate
            break
    else:
        if v2_mounts:
            unified_mount = v2_mounts[0]

    if unified_mount == "/sys/fs/cgroup":
        mode = "unified"
    elif v1_mounts and v2_mounts:
        mode = "hybrid"
    elif v1_mounts:
        mode = "legacy"
    elif v2_mounts:
        mode = "unified"
    else:
        mode = "none"
    return CgroupLayout(
        mode=mode,
        v1_controllers=tuple(controllers),
        v1_named=tuple(named),
        v1_mounts=tuple(v1_mounts),
        unified_mount=unified_mount,
    )


def offered_controllers(mountpoint: str) -> tuple[str, ...]:
    """The controllers a cgroup2 root offers (its ``cgroup.controllers``); none if it cannot be read."""
    try:
        return tuple(read_text(os.path.join(mountpoint, "cgroup.controllers")).split())
    except OSError:
        return ()


def cgroup_layout() -> CgroupLayout:
    """The cgroup layout of the current mount namespace (may raise OSError)."""
    layout = parse_cgroup_layout(read_text(MOUNTINFO))
    if layout.unified_mount is None:
        return layout
    return attrs.evolve(layout, unified_controllers=offered_controllers(layout.unified_mount))
