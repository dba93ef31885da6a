"""Which cgroup hierarchies this host has: detected on demand, cached per mount table, thread-safe.

A *hierarchy* is one cgroup tree: a v1 hierarchy (one or more controllers, or a named one such as
``name=systemd``) or the unified cgroup2 tree. Detection reads ``/proc/self/mountinfo`` (each mount
line is classified by :func:`.mountinfo.parse_cgroup_layout`, so controller options mean the
same in ``lxcframe check`` and here) and, for cgroup2, the root's ``cgroup.controllers``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import attrs

from lxcframe.plugins.cgroup.mountinfo import MOUNTINFO, offered_controllers, parse_cgroup_layout

V1, V2 = "v1", "v2"


@attrs.frozen
class Hierarchy:
    """One mounted cgroup tree."""

    kind: str  # V1 or V2
    mountpoint: str
    #: v1: the controllers bound to it; v2: those its root offers (``cgroup.controllers``).
    controllers: tuple[str, ...] = ()
    #: The name of a named v1 hierarchy (``systemd`` for ``name=systemd``), else empty.
    name: str = ""

    @property
    def label(self) -> str:
        """How ``/proc/PID/cgroup`` names it (``cpu,cpuacct``, ``name=systemd``; ``""`` for cgroup2)."""
        if self.kind == V2:
            return ""
        parts = list(self.controllers)
        if self.name:
            parts.append(f"name={self.name}")
        return ",".join(parts)

    @property
    def display(self) -> str:
        return self.label or "unified"

    def matches(self, proc_label: str) -> bool:
        """Whether a ``/proc/PID/cgroup`` line's controller field is this hierarchy."""
        if self.kind == V2:
            return proc_label == ""
        return proc_label != "" and set(proc_label.split(",")) == set(self.label.split(","))

    def path(self, cgroup: str) -> str:
        """The directory of ``cgroup`` (a path as ``/proc/PID/cgroup`` shows it) in this mount."""
        return os.path.join(self.mountpoint, cgroup.lstrip("/")).rstrip("/") or "/"

    @property
    def mount_dir(self) -> str:
        """Where a container sees it under ``/sys/fs/cgroup`` (LXC: the host mountpoint's last part)."""
        return os.path.basename(self.mountpoint.rstrip("/"))

    @property
    def mount_data(self) -> str | None:
        """The ``mount -o`` data that mounts this same hierarchy again (v1 must name it exactly)."""
        if self.kind == V2:
            return None
        parts = list(self.controllers) or ["none"]
        if self.name:
            parts.append(f"name={self.name}")
        return ",".join(parts)


@attrs.frozen
class Layout:
    """Every usable (writable, whole-tree) cgroup hierarchy of this mount namespace."""

    mode: str  # unified, hybrid, legacy, none (as parse_cgroup_layout names them)
    hierarchies: tuple[Hierarchy, ...] = ()

    @property
    def v1(self) -> tuple[Hierarchy, ...]:
        return tuple(h for h in self.hierarchies if h.kind == V1)

    @property
    def v2(self) -> Hierarchy | None:
        return next((h for h in self.hierarchies if h.kind == V2), None)

    def v1_for(self, controller: str) -> Hierarchy | None:
        return next((h for h in self.v1 if controller in h.controllers), None)

    @property
    def v1_controllers(self) -> tuple[str, ...]:
        return tuple(c for h in self.v1 for c in h.controllers)


def _cgroup_lines(mountinfo: str) -> list[str]:
    return [line for line in mountinfo.splitlines() if " - cgroup " in line or " - cgroup2 " in line]


def parse_layout(mountinfo: str, read_controllers: Callable[[str], tuple[str, ...]] = offered_controllers) -> Layout:
    """The layout described by a mountinfo text (``read_controllers`` reads a cgroup2 root's offer)."""
    lines = _cgroup_lines(mountinfo)
    hierarchies: list[Hierarchy] = []
    seen_devices: set[str] = set()
    for line in lines:
        fields = line.split(" ")
        device, root, options = fields[2], fields[3], fields[5].split(",")
        # A mount of a sub-tree (bind mount of a cgroup dir) cannot place cgroups by their full
        # path, and a read-only mount cannot create them: neither is usable, as in LXC.
        if root != "/" or "ro" in options or device in seen_devices:
            continue
        seen_devices.add(device)
        classified = parse_cgroup_layout(line)
        if classified.v1_mounts:
            hierarchies.append(Hierarchy(V1, classified.v1_mounts[0], classified.v1_controllers,
                                         classified.v1_named[0] if classified.v1_named else ""))
        elif classified.unified_mount is not None:
            mountpoint = classified.unified_mount
            hierarchies.append(Hierarchy(V2, mountpoint, read_controllers(mountpoint)))
    mode = parse_cgroup_layout("\n".join(lines)).mode
    return Layout(mode, tuple(hierarchies))


def _read_mountinfo() -> str:
    with open(MOUNTINFO, encoding="utf-8", errors="replace") as handle:
        return handle.read()


class LayoutCache:
    """The layout, detected the first time it is asked for and again only when cgroup mounts change.

    Safe for concurrent callers: the lock makes one thread detect while the others wait and then
    share its result. Keyed by the cgroup lines of the mount table, so a hierarchy mounted or
    unmounted later is noticed (reading mountinfo is cheap; the detection behind it is not).
    """

    def __init__(self, parse: Callable[[str], Layout] = parse_layout) -> None:
        self._parse = parse
        self._lock = threading.Lock()
        self._key: tuple[str, ...] | None = None
        self._layout: Layout | None = None

    @property
    def detected(self) -> bool:
        return self._layout is not None

    def get(self) -> Layout:
        text = _read_mountinfo()
        key = tuple(_cgroup_lines(text))
        with self._lock:
            if self._layout is None or self._key != key:
                self._layout = self._parse(text)
                self._key = key
            return self._layout


#: The process-wide cache. Creating it detects nothing: only :func:`current_layout` does, on demand.
SHARED_CACHE = LayoutCache()


def current_layout() -> Layout:
    return SHARED_CACHE.get()
