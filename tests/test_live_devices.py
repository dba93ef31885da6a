"""Devices and interfaces given to a running container and taken back: ``add_device_node`` and
``remove_device_node`` (mount injection plus the device cgroup), ``attach_interface`` and
``detach_interface`` (the netns plugin, through pyroute2)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from lxcframe.errors import ContainerError, StageError

pytestmark = pytest.mark.container

#: A container of its own network namespace whose device cgroup allows only what busybox needs: /dev/full
#: (c 1:7) is what the tests give and take back.
LOCKED_DEVICES = (
    ("lxc.net.0.type", "empty"),
    ("lxc.cgroup.devices.deny", "a"),
    ("lxc.cgroup.devices.allow", "c 1:3 rwm"),  # null
    ("lxc.cgroup.devices.allow", "c 5:1 rwm"),  # console
    ("lxc.cgroup.devices.allow", "c 5:2 rwm"),  # ptmx
    ("lxc.cgroup.devices.allow", "c 136:* rwm"),  # pts
)


def _inside(container, script: str) -> tuple[int, str]:
    read_end, write_end = os.pipe()
    try:
        code = container.attach_wait(["/bin/sh", "-c", script], stdout=write_end, stderr=write_end)
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as pipe:
        return code, pipe.read()


def _device_list(container) -> list[str]:
    return container.get_cgroup_item("devices.list").splitlines()


@pytest.fixture
def full_device(tmp_path: Path) -> str:
    """A node of the host's /dev/full (c 1:7) in the test's own directory."""
    path = tmp_path / "full"
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    return str(path)


def test_a_device_node_is_given_allowed_and_taken_back(make_container, full_device):
    container = make_container("dvnode", config=LOCKED_DEVICES)
    container.start()
    try:
        assert "c 1:7 rwm" not in _device_list(container)
        container.add_device_node(full_device, "/dev/full-given")
        assert "c 1:7 rwm" in _device_list(container)
        # Writing to /dev/full fails with ENOSPC: the node works, the cgroup let it open.
        code, out = _inside(container, "ls -l /dev/full-given; echo x > /dev/full-given; echo rc=$?")
        assert code == 0 and out.startswith("crw") and "1,   7" in out and out.rstrip().endswith("rc=1")
        assert "No space left on device" in out
        container.remove_device_node(full_device, "/dev/full-given")
        assert "c 1:7 rwm" not in _device_list(container)
        assert _inside(container, "test -e /dev/full-given && echo there || echo gone") == (0, "gone\n")
    finally:
        container.stop(kill=True)


def test_device_node_refusals(make_container, tmp_path):
    container = make_container("dvbad", config=LOCKED_DEVICES)
    regular = tmp_path / "plain"
    regular.write_text("not a device")
    with pytest.raises(ContainerError, match=r"device .*plain: not a character or block device node"):
        container.add_device_node(str(regular))
    with pytest.raises(ContainerError, match=r"device /no/such/node: No such file or directory"):
        container.add_device_node("/no/such/node")
    with pytest.raises(ContainerError, match="not running"):
        container.add_device_node("/dev/null", "/dev/null2")


@pytest.fixture
def dummy_link():
    """One end of a veth pair on the host (no dummy driver on every kernel); deleting it deletes both."""
    name = "lxftdm0"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", "lxftdm1"], check=True)
    yield name
    subprocess.run(["ip", "link", "del", "lxftdm1"], capture_output=True, check=False)


def _host_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def test_an_interface_moves_in_and_back_out_under_the_names_asked_for(make_container, dummy_link):
    container = make_container("dvif", config=(("lxc.net.0.type", "empty"),))
    container.start()
    try:
        container.attach_interface(dummy_link, "eth7")
        assert dummy_link not in _host_links()
        assert container.get_interfaces() == ("lo", "eth7")
        code, out = _inside(container, "ip link set eth7 up && ip addr add 192.0.2.17/24 dev eth7 && ip -4 -o addr")
        assert code == 0 and "192.0.2.17/24" in out
        container.detach_interface("eth7", dummy_link)
        assert dummy_link in _host_links() and container.get_interfaces() == ("lo",)
    finally:
        container.stop(kill=True)


def test_interface_refusals(make_container, dummy_link):
    container = make_container("dvifbad", config=(("lxc.net.0.type", "empty"),))
    with pytest.raises(ContainerError, match="not running"):
        container.attach_interface(dummy_link)
    container.start()
    try:
        with pytest.raises(StageError, match="find link lxftnone0: No such device"):
            container.attach_interface("lxftnone0")
        with pytest.raises(ContainerError, match="the host's loopback cannot be moved"):
            container.attach_interface("lo", "lo2")
        with pytest.raises(ContainerError, match="is not an interface name"):
            container.attach_interface("a-name-much-too-long")
        with pytest.raises(StageError, match="find link eth9: No such device"):
            container.detach_interface("eth9")
        with pytest.raises(ContainerError, match="the container's loopback cannot be moved"):
            container.detach_interface("lo", "lxftlo0")
        assert dummy_link in _host_links()
    finally:
        container.stop(kill=True)


def test_the_python3_lxc_spellings_return_bools(make_container, lxcpath, full_device, dummy_link):
    import lxcframe.compat.lxc as lxc

    make_container("dvcompat", config=LOCKED_DEVICES).start()
    container = lxc.Container("dvcompat", lxcpath)
    try:
        assert container.add_device_node(full_device, "/dev/full-given") is True
        assert container.remove_device_node(full_device, "/dev/full-given") is True
        assert container.add_device_node("/no/such/node") is False
        assert container.attach_interface(dummy_link, "eth3") is True
        assert container.get_interfaces() == ("lo", "eth3")
        assert container.detach_interface("eth3") is True  # back under the name it has inside
        assert "eth3" in _host_links()
        assert container.detach_interface("eth3") is False
    finally:
        subprocess.run(["ip", "link", "set", "eth3", "name", dummy_link], capture_output=True, check=False)
        container.stop()


def test_the_device_verb_adds_and_removes_nodes_and_interfaces_as_lxc_device(make_container, lxcpath,
                                                                               full_device, dummy_link):
    from .conftest import run_cli

    container = make_container("dvcli", config=LOCKED_DEVICES)
    container.start()
    try:
        def device(*args: str) -> None:
            done = run_cli("-P", lxcpath, "device", "dvcli", *args)
            assert done.returncode == 0, done.stderr

        device("add", full_device, "/dev/full-given")
        assert "c 1:7 rwm" in _device_list(container)
        assert _inside(container, "test -c /dev/full-given && echo node") == (0, "node\n")
        device("add", dummy_link, "eth5")
        assert dummy_link not in _host_links() and container.get_interfaces() == ("lo", "eth5")
        device("del", "eth5", dummy_link)
        assert dummy_link in _host_links() and container.get_interfaces() == ("lo",)
        device("del", full_device, "/dev/full-given")
        assert "c 1:7 rwm" not in _device_list(container)
        refused = run_cli("-P", lxcpath, "device", "dvcli", "add", "/no/such/node")
        assert refused.returncode == 1 and "/no/such/node" in refused.stderr
    finally:
        container.stop(kill=True)
