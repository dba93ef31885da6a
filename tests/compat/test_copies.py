"""clone (dir copies and overlay snapshots), snapshots and cgroup items against python3-lxc."""

from tests.compat.differential import assert_same


def test_copies_and_cgroup_items_match_python3_lxc(differential):
    real, compat = differential("copies.py", "compat-copies", also=("compat-copy", "compat-copy2", "compat-renamed",
                                                                   "compat-copy3"))
    assert ("snapshot", "'snap0'") in real.entries
    assert ("pids.max after", "'100'") in real.entries
    assert ("its layers: the source's rootfs, its own directory", "('compat-copies/rootfs', 'compat-copy3')"
            ) in real.entries
    assert_same(real, compat)
