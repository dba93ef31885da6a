"""get_cgroup_item and set_cgroup_item against python3-lxc beyond pids.max (test_copies.py has it):
other controllers, missing keys, refused writes, frozen and stopped containers."""

import os

from tests.compat.differential import assert_same, split_off


def _hybrid_freezer() -> bool:
    """cgroup1's freezer beside a unified hierarchy: LXC freezes with the one, lxcframe with the other."""
    return os.path.exists("/sys/fs/cgroup/freezer/cgroup.procs") and os.path.exists(
        "/sys/fs/cgroup/unified/cgroup.controllers")


def test_cgroup_items_match_python3_lxc(differential):
    real, compat = differential("cgroup_items.py", "compat-cgroup")
    # LXC wrote and read what the script asked, and refused what the kernel refused.
    assert ("cpu weight after", "'512'") in real.entries
    assert ("memory limit after", "'67108864'") in real.entries
    assert ("a value the kernel refuses", "False") in real.entries
    assert ("missing file of a mounted controller", "raises KeyError") in real.entries
    assert ("memory limit of a stopped container", "raises KeyError") in real.entries
    assert ("state frozen", "'FROZEN'") in real.entries
    if _hybrid_freezer():
        # The documented difference (docs/compat.md): lxcframe freezes through cgroup2's cgroup.freeze,
        # where LXC 5.0 writes cgroup1's freezer.state; the container is FROZEN on both sides.
        real_frozen, real = split_off(real, "freezer state while frozen")
        compat_frozen, compat = split_off(compat, "freezer state while frozen")
        assert (real_frozen, compat_frozen) == ("True", "False")
    assert_same(real, compat)
