"""A driver per plugin: the hierarchies it manages, built on demand from the (cached) layout.

Building one is cheap and safe from any number of threads at once: the layout behind it is detected
once (see :class:`lxcframe.cgroups.layout.LayoutCache`) and a driver is an immutable value.
"""

from __future__ import annotations

import os

import attrs

from lxcframe.cgroups.delegate import v2_files
from lxcframe.cgroups.layout import SHARED_CACHE, V1, V2, Hierarchy, Layout, LayoutCache
from lxcframe.cgroups.naming import cgroup_in, read_proc_cgroup
from lxcframe.probe import Probe

#: The kind of hierarchy each cgroup plugin drives.
KIND_OF = {"cgroup1": V1, "cgroup2": V2}


@attrs.frozen
class Driver:
    plugin: str  # cgroup1 or cgroup2
    mode: str
    hierarchies: tuple[Hierarchy, ...]

    @property
    def controllers(self) -> tuple[str, ...]:
        return tuple(c for h in self.hierarchies for c in h.controllers)

    def unavailable_reason(self) -> str | None:
        if self.hierarchies:
            return None
        if self.plugin == "cgroup1":
            return "no writable cgroup v1 hierarchy is mounted"
        return "no writable cgroup2 filesystem is mounted"

    def probe(self) -> Probe:
        reason = self.unavailable_reason()
        if reason is not None:
            return Probe(self.plugin, False, f"layout {self.mode}: {reason}")
        own = _own_entries()
        parts = []
        for h in self.hierarchies:
            where = _own_cgroup(h, own)
            parts.append(f"{h.display} at {h.mountpoint} (this process: {where})")
        if self.plugin == "cgroup1":
            detail = f"layout {self.mode}; usable controllers: {', '.join(self.controllers) or 'none'}; " \
                     + "; ".join(parts)
        else:
            unified = self.hierarchies[0]
            features = _v2_features(unified)
            detail = (f"layout {self.mode}; {parts[0]}; controllers it can hand down: "
                      f"{' '.join(unified.controllers) or 'none'}; {features}; "
                      f"delegated files: {' '.join(v2_files())}")
        return Probe(self.plugin, True, detail)


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


def driver_from(layout: Layout, plugin: str) -> Driver:
    if KIND_OF[plugin] == V1:
        return Driver(plugin, layout.mode, layout.v1)
    return Driver(plugin, layout.mode, (layout.v2,) if layout.v2 is not None else ())


def build_driver(plugin: str, cache: LayoutCache = SHARED_CACHE) -> Driver:
    """The driver of ``plugin`` (``cgroup1``/``cgroup2``) for the current layout."""
    return driver_from(cache.get(), plugin)
