"""add_device_node/remove_device_node and attach_interface/detach_interface against python3-lxc."""

import os
import stat
import subprocess

import pytest

from tests.compat.differential import assert_same, split_off

#: One end of the veth pair the script moves in and out; deleting its peer deletes both.
LINK, PEER = "lxftcd0", "lxftcd1"


@pytest.fixture
def full_node(tmp_path):
    """A node of the host's /dev/full (c 1:7) in the test's own directory."""
    path = tmp_path / "full"
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    return str(path)


@pytest.fixture
def veth_end():
    subprocess.run(["ip", "link", "add", LINK, "type", "veth", "peer", "name", PEER], check=True)
    yield LINK
    subprocess.run(["ip", "link", "del", PEER], capture_output=True, check=False)


def test_devices_and_interfaces_match_python3_lxc(differential, full_node, veth_end):
    real, compat = differential("devices.py", "compat-dev", full_node, veth_end)
    # LXC made the node, opened the device cgroup for it, and moved the link in and back out.
    assert ("allowed after", "True") in real.entries
    assert ("it is /dev/full: writing fails", "(0, '1\\n')") in real.entries
    assert ("gone inside", "(0, 'gone\\n')") in real.entries
    assert ("interfaces after", repr(sorted(["lo", LINK]))) in real.entries
    assert ("back on the host", repr([LINK])) in real.entries
    assert ("back under the name it had inside", repr([LINK + "i"])) in real.entries
    # The documented difference (docs/compat.md): liblxc looks dest_path up on the host (and so fails
    # unless the host has a node there too); lxcframe makes the node at dest_path from src_path.
    for label in ("add at a path the host does not have", "remove it"):
        real_result, real = split_off(real, label)
        compat_result, compat = split_off(compat, label)
        assert (real_result, compat_result) == ("False", "True"), label
    assert_same(real, compat)
