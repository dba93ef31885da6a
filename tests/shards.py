"""The suite split over the machine's cores: ``--shard I/N`` runs every N-th test, from the I-th.

``scripts/test.sh`` starts one pytest process per shard side by side, then the tests marked
``serial`` alone. A shard is a plain single-threaded pytest (pytest-xdist's workers carry a
receiver thread, which would send every library call down the multi-threaded caller's paths), and
each shard's host check must see only what its own tests made. So a shard process, before its first
test, moves into a world of its own that every process it starts inherits:

- a network namespace of its own (``lo`` up, and ``/sys/class/net`` showing it): its containers'
  host-side links and netns ids are the shard's, and no test address ever reaches the host's;
- a mount namespace of its own, a slave of the host's: the host's mounts still reach it, none of
  its own reach the host or the other shard;
- a cgroup of its own below its own in every hierarchy (``lxcframe-shard-I``, and in the cgroup2
  tree ``lxcframe-shard-I/tests``, which gets no controller), so that the containers it places
  below "its own cgroup" (``lxc.cgroup.relative = 1``) are the shard's alone; it leaves and removes
  it at the end. Tests that need cgroup2 controllers are marked ``serial``.

What stays shared is the host's file system, which the host check compares by name with a grace
period; tests that change host files by design (a user account, say) are marked ``serial``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time

import pytest

from lxcframe import syscalls
from lxcframe.plugins.netns.child import loopback_up
from lxcframe.plugins.netns.nsid import assign_nsid

SHARD_CGROUP = "lxcframe-shard-{index}"


def parse_shard(value: str) -> tuple[int, int]:
    """``I/N`` with 0 <= I < N."""
    index, sep, count = value.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
        raise pytest.UsageError(f"--shard {value!r}: expected I/N with 0 <= I < N")
    return int(index), int(count)


def select(items: list[pytest.Item], index: int, count: int) -> tuple[list[pytest.Item], list[pytest.Item]]:
    """The items of shard ``index`` of ``count``, and the deselected ones: every ``count``-th test that is
    not marked ``serial`` (those run after the shards, alone), round robin in collection order so that
    each shard gets its part of every module's slow and fast tests."""
    kept, dropped = [], []
    position = 0
    for item in items:
        if item.get_closest_marker("serial") is not None:
            dropped.append(item)
            continue
        (kept if position % count == index else dropped).append(item)
        position += 1
    return kept, dropped


class ShardWorld:
    """The namespaces and cgroups of one shard process (see the module's docstring)."""

    def __init__(self, index: int, own_cgroup_dirs: list[str]) -> None:
        self.index = index
        self.parents = own_cgroup_dirs
        self.cgroups: list[str] = []

    def enter(self) -> None:
        syscalls.unshare(syscalls.CLONE_NEWNET | syscalls.CLONE_NEWNS)
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_SLAVE, None)
        loopback_up()
        _sysfs_net_of_this_namespace()
        # The kernel gives a namespace an id for itself the first time it reports one of its links
        # whose peer is in another namespace (a container's veth seen from here, say), and keeps it:
        # the host's got its id long before any test, a fresh namespace would get it during one.
        own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            assign_nsid(own)
        finally:
            os.close(own)
        name = SHARD_CGROUP.format(index=self.index)
        try:
            for parent in self.parents:
                leaf = os.path.join(parent, name)
                os.mkdir(leaf)
                self.cgroups.append(leaf)
                if os.path.exists(os.path.join(parent, "cgroup.controllers")):
                    # cgroup2: a cgroup with a process of its own may hand no controller down, and
                    # the runtime hands its containers every controller it has. One level more,
                    # with none handed to it, keeps the shard's process and its containers legal.
                    leaf = os.path.join(leaf, "tests")
                    os.mkdir(leaf)
                    self.cgroups.append(leaf)
                else:
                    _inherit_cpuset(parent, leaf)
                _move_self(leaf)
        except BaseException:
            self.leave()
            raise

    def leave(self) -> None:
        """Back into the cgroups it came from, and its own removed (once its last container's are gone)."""
        for leaf in reversed(self.cgroups):
            with contextlib.suppress(OSError):
                _move_self(os.path.dirname(leaf) if os.path.basename(leaf) != "tests" else
                           os.path.dirname(os.path.dirname(leaf)))
            deadline = time.monotonic() + 10
            while True:
                try:
                    os.rmdir(leaf)
                    break
                except FileNotFoundError:
                    break
                except OSError as err:
                    if err.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        self.cgroups.clear()


def _sysfs_net_of_this_namespace() -> None:
    """``/sys/class/net`` and ``/sys/devices/virtual/net`` showing this network namespace's links.

    A sysfs mount shows the links of the namespace that mounted it: the host's ``/sys`` keeps
    showing the host's. A fresh sysfs mounted here shows the shard's; its two network directories
    are bound over the host's (not all of /sys, whose cgroup mounts must stay), and it goes again.
    """
    fresh = tempfile.mkdtemp(prefix="lxcframe-shard-sysfs-")
    try:
        syscalls.mount("sysfs", fresh, "sysfs", syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC, None)
        try:
            for directory in ("class/net", "devices/virtual/net"):
                syscalls.mount(os.path.join(fresh, directory), os.path.join("/sys", directory), None,
                               syscalls.MS_BIND, None)
        finally:
            syscalls.umount2(fresh, syscalls.MNT_DETACH)
    finally:
        os.rmdir(fresh)


def _inherit_cpuset(parent: str, leaf: str) -> None:
    """A new v1 cpuset cgroup has no CPUs or memory nodes and takes no task until it is given its parent's."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        source = os.path.join(parent, name)
        if os.path.exists(source) and os.path.exists(os.path.join(parent, "cgroup.clone_children")):
            with open(source) as handle:
                value = handle.read().strip()
            with open(os.path.join(leaf, name), "w") as handle:
                handle.write(value)


def _move_self(directory: str) -> None:
    with open(os.path.join(directory, "cgroup.procs"), "w") as handle:
        handle.write(str(os.getpid()))
