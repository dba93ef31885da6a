"""Creating a container's cgroups in every hierarchy at once, and removing exactly what was created.

:class:`Placed` is what a start records per hierarchy (saved in the state file, JSON): the base, the
payload, where init lives, the monitor's cgroup, and every cgroup this start made, in order. Removal
works from that record alone, so a process other than the monitor can clean up after a dead one,
and it never removes a cgroup it did not make.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
from collections.abc import Iterable, Mapping

import attrs

from lxcframe.plugins.cgroup import fs
from lxcframe.plugins.cgroup.layout import V1, Hierarchy
from lxcframe.plugins.cgroup.naming import MAX_SUFFIX, Names, cgroup_in, join, names_for, read_proc_cgroup
from lxcframe.plugins.cgroup.settings import CgroupSettings

#: The plugin's name.
PLUGIN = "cgroup"


@attrs.frozen
class Placed:
    """One hierarchy of one container: cgroup paths as ``/proc/PID/cgroup`` shows them."""

    kind: str
    mountpoint: str
    label: str
    controllers: tuple[str, ...]
    base: str
    payload: str
    #: Where init lives and the cgroup namespace is rooted: the payload, or its inner sub-cgroup.
    init: str
    monitor: str | None = None
    #: Every cgroup this start created, parents before children.
    created: tuple[str, ...] = ()
    #: Where the monitor was before it moved into ``monitor`` (``None``: it did not move).
    monitor_origin: str | None = None

    def path(self, cgroup: str, leaf: str = "") -> str:
        directory = os.path.join(self.mountpoint, cgroup.lstrip("/")).rstrip("/")
        return os.path.join(directory, leaf) if leaf else directory

    @property
    def hierarchy(self) -> Hierarchy:
        names = [p[5:] for p in self.label.split(",") if p.startswith("name=")]
        return Hierarchy(self.kind, self.mountpoint, self.controllers, names[0] if names else "")


@attrs.frozen
class CgroupRecord:
    """What a start saves in the state file: every hierarchy it placed the container in."""

    placed: tuple[Placed, ...]


def from_record(record: CgroupRecord | None) -> list[Placed]:
    return list(record.placed) if record is not None else []


def _init_cpuset(hierarchy: Hierarchy, directory: str) -> None:
    # A new v1 cpuset starts with no cpus and no mems, and a task cannot join it: give it its
    # parent's, rather than setting cgroup.clone_children on a parent we may not own.
    if hierarchy.kind != V1 or "cpuset" not in hierarchy.controllers:
        return
    parent = os.path.dirname(directory)
    for leaf in ("cpuset.cpus", "cpuset.mems"):
        if not fs.read_or_none(os.path.join(directory, leaf)):
            value = fs.read_or_none(os.path.join(parent, leaf))
            if value:
                fs.write(os.path.join(directory, leaf), value)


def make_cgroup(hierarchy: Hierarchy, cgroup: str, made: list[str], *, leaf_must_be_new: bool) -> None:
    """Create ``cgroup`` and missing parents, appending each one made to ``made``.

    Raises :class:`FileExistsError` when the last component exists and ``leaf_must_be_new``.
    """
    parts = [p for p in cgroup.split("/") if p]
    current = "/"
    for index, part in enumerate(parts):
        current = posixpath.join(current, part)
        directory = hierarchy.path(current)
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            if leaf_must_be_new and index == len(parts) - 1:
                raise
            continue
        except OSError as err:
            raise OSError(err.errno, f"cannot create cgroup {directory}: {err.strerror}", directory) from None
        made.append(current)
        _init_cpuset(hierarchy, directory)


def _undo_made(hierarchy: Hierarchy, made: list[str]) -> None:
    for cgroup in reversed(made):
        with contextlib.suppress(OSError):
            os.rmdir(hierarchy.path(cgroup))


def _attempt(hierarchies: Iterable[Hierarchy], bases: Mapping[Hierarchy, str], names: Names,
             with_monitor: bool) -> list[Placed]:
    done: list[tuple[Hierarchy, list[str]]] = []
    placed = []
    try:
        for hierarchy in hierarchies:
            made: list[str] = []
            done.append((hierarchy, made))
            base = bases[hierarchy]
            payload = join(base, names.payload)
            make_cgroup(hierarchy, payload, made, leaf_must_be_new=True)
            monitor = None
            if with_monitor:
                monitor = join(base, names.monitor)
                make_cgroup(hierarchy, monitor, made, leaf_must_be_new=True)
            placed.append(Placed(hierarchy.kind, hierarchy.mountpoint, hierarchy.label, hierarchy.controllers, base,
                                 payload, payload, monitor, tuple(made)))
    except BaseException:
        for hierarchy, made in reversed(done):
            _undo_made(hierarchy, made)
        raise
    return placed


def create(hierarchies: tuple[Hierarchy, ...], bases: Mapping[Hierarchy, str], settings: CgroupSettings,
           name: str, *, with_monitor: bool) -> list[Placed]:
    """Create the payload (and monitor) cgroups in every hierarchy, with one suffix for all of them."""
    for attempt in range(MAX_SUFFIX):
        names = names_for(settings, name, attempt)
        try:
            return _attempt(hierarchies, bases, names, with_monitor)
        except FileExistsError as err:
            if names.fixed:
                raise FileExistsError(errno.EEXIST, f"cgroup {err.filename} exists already "
                                      "(lxc.cgroup.dir.container/monitor name it exactly)", err.filename) from None
    raise FileExistsError(errno.EEXIST, f"no free cgroup name for {name!r} after {MAX_SUFFIX} tries")


def add_inner(placed: Placed, inner: str) -> Placed:
    """Create the inner cgroup below the payload, where init will live."""
    made: list[str] = []
    target = join(placed.payload, inner)
    make_cgroup(placed.hierarchy, target, made, leaf_must_be_new=False)
    return attrs.evolve(placed, init=target, created=placed.created + tuple(made))


def _own_cgroup(placed: Placed) -> str | None:
    try:
        return cgroup_in(placed.hierarchy, read_proc_cgroup("self"))
    except LookupError:
        return None


def move_self(placed: Placed, cgroup: str) -> None:
    fs.write(placed.path(cgroup, "cgroup.procs"), str(os.getpid()))


def leave_monitor_cgroup(placed: Placed) -> None:
    """If this process sits in the monitor cgroup, go back where it came from (else to the base)."""
    if placed.monitor is None or _own_cgroup(placed) != placed.monitor:
        return
    try:
        move_self(placed, placed.monitor_origin or placed.base)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise
        move_self(placed, placed.base)


def remove(placed: Placed) -> None:
    """Release one hierarchy of a container: empty and remove what the start created, leaves first.

    Idempotent: cgroups already gone are skipped. The payload is emptied first (waiting for exiting
    processes, then killing any left); cgroups made inside it by the container go with it.
    """
    leave_monitor_cgroup(placed)
    payload_dir = placed.path(placed.payload)
    if placed.payload in placed.created and os.path.isdir(payload_dir):
        fs.empty([payload_dir])
    for cgroup in reversed(placed.created):
        directory = placed.path(cgroup)
        if not os.path.isdir(directory):
            continue
        if cgroup == placed.payload or cgroup.startswith(placed.payload + "/"):
            fs.remove_tree(directory)
        elif cgroup == placed.monitor:
            fs.empty([directory])
            fs.remove_tree(directory)
        else:
            # A parent made for lxc.cgroup.dir: another container may use it by now.
            try:
                os.rmdir(directory)
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EBUSY, errno.ENOENT):
                    raise
