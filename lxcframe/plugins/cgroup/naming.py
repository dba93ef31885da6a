"""Where a container's cgroups go: the base cgroup of each hierarchy and the names below it (LXC 4/5).

* payload ``lxc.payload.NAME``, monitor ``lxc.monitor.NAME``, side by side below the base; on a
  collision both take the same suffix ``-1`` … ``-999`` in every hierarchy;
* ``lxc.cgroup.dir = D``: ``D/lxc.payload.NAME`` and ``D/lxc.monitor.NAME``;
* ``lxc.cgroup.dir.container`` / ``lxc.cgroup.dir.monitor``: exactly those paths (no suffix), init
  in ``lxc.cgroup.dir.container.inner`` below the container's cgroup when that is set.

The base is init's cgroup (``/proc/1/cgroup``) for root, so that containers leave the caller's
cgroup, unless ``lxc.cgroup.relative = 1``; then, and for other users, it is the caller's own.
"""

from __future__ import annotations

import os
import posixpath

import attrs

from lxcframe.plugins.cgroup.layout import Hierarchy
from lxcframe.plugins.cgroup.settings import CgroupSettings

PAYLOAD_PREFIX = "lxc.payload."
MONITOR_PREFIX = "lxc.monitor."
MAX_SUFFIX = 1000


@attrs.frozen
class Names:
    """Paths below the base cgroup (no leading ``/``)."""

    payload: str
    monitor: str
    #: Below ``payload``: where init lives and the cgroup namespace is rooted, if not the payload itself.
    inner: str | None = None
    #: Given by the user: taken as they are, never retried with a suffix.
    fixed: bool = False


def names_for(settings: CgroupSettings, name: str, attempt: int) -> Names:
    """The names of try number ``attempt`` (0: no suffix, N: ``-N``)."""
    if settings.dir_container is not None and settings.dir_monitor is not None:
        return Names(settings.dir_container, settings.dir_monitor, settings.inner, fixed=True)
    suffix = f"-{attempt}" if attempt else ""
    payload, monitor = f"{PAYLOAD_PREFIX}{name}{suffix}", f"{MONITOR_PREFIX}{name}{suffix}"
    if settings.dir is not None:
        payload, monitor = posixpath.join(settings.dir, payload), posixpath.join(settings.dir, monitor)
    return Names(payload, monitor)


def join(base: str, relative: str) -> str:
    """A cgroup path below ``base``, normalised (``/`` + components)."""
    return posixpath.normpath(posixpath.join("/", base, relative))


def parse_proc_cgroup(text: str) -> list[tuple[str, str]]:
    """``(controllers field, path)`` of every line of a ``/proc/PID/cgroup`` text."""
    entries = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            entries.append((parts[1], parts[2]))
    return entries


def read_proc_cgroup(pid: int | str) -> list[tuple[str, str]]:
    with open(f"/proc/{pid}/cgroup", encoding="utf-8") as handle:
        return parse_proc_cgroup(handle.read())


def cgroup_in(hierarchy: Hierarchy, entries: list[tuple[str, str]]) -> str:
    """The path ``entries`` (a parsed ``/proc/PID/cgroup``) give for ``hierarchy``."""
    for label, path in entries:
        if hierarchy.matches(label):
            return path
    raise LookupError(f"no {hierarchy.display} line in /proc/PID/cgroup")


def _strip_init_scope(path: str) -> str:
    # systemd keeps init itself in /init.scope; containers belong beside it, not inside it.
    if path == "/init.scope" or path.endswith("/init.scope"):
        return posixpath.dirname(path) or "/"
    return path


def base_cgroups(hierarchies: tuple[Hierarchy, ...], relative: bool, *,
                 init_entries: list[tuple[str, str]] | None = None,
                 own_entries: list[tuple[str, str]] | None = None,
                 euid: int | None = None) -> dict[Hierarchy, str]:
    """The base cgroup of each hierarchy (``/proc/1/cgroup`` and ``/proc/self/cgroup`` unless given)."""
    euid = os.geteuid() if euid is None else euid
    escape = euid == 0 and not relative
    if escape:
        entries = init_entries if init_entries is not None else read_proc_cgroup(1)
    else:
        entries = own_entries if own_entries is not None else read_proc_cgroup("self")
    return {h: _strip_init_scope(cgroup_in(h, entries)) for h in hierarchies}
