"""Network namespaces with real containers: every device type, addresses read from inside and from the
host (netns id, strict-check dumps), netns ids allocated and released, clean unwinds, config errors.

Host devices the tests need (a macvlan's lower device, a phys device) are ends of veth pairs made here
and deleted in ``finally``; host veth ends get IPv6 switched off so they hold no address and no route.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from lxcframe.container import Container
from lxcframe.errors import ConfigError, ConfigErrors, ContainerError, StageError
from lxcframe.hooks import hookimpl
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins.netns import inspect
from lxcframe.plugins.netns import rawlink as rtnl
from lxcframe.plugins.netns.nsid import assign_nsid, wait_nsid_released
from lxcframe.plugins.netns.rawlink import RtnlSocket
from lxcframe.plugins.netns.records import DeviceRecord, NetnsRecord

pytestmark = pytest.mark.container

VETH = (
    ("lxc.net.0.type", "veth"),
    ("lxc.net.0.flags", "up"),
    ("lxc.net.0.name", "eth0"),
    ("lxc.net.0.veth.pair", "lxftv0"),
    ("lxc.net.0.hwaddr", "00:16:3e:5a:00:01"),
    ("lxc.net.0.mtu", "1400"),
    ("lxc.net.0.ipv4.address", "198.51.100.10/24"),
    ("lxc.net.0.ipv4.address", "203.0.113.10/24"),
    ("lxc.net.0.ipv4.gateway", "198.51.100.1"),
    ("lxc.net.0.ipv6.address", "2001:db8:1::10/64"),
    ("lxc.net.0.ipv6.gateway", "2001:db8:1::1"),
)


# --- helpers ---------------------------------------------------------------------------------------


def capture(container: Container, *cmd: str) -> str:
    rootfs = container.load_config().get("lxc.rootfs.path")
    code = container.attach_wait(["/bin/sh", "-c", 'exec "$0" "$@" > /.capture 2>&1', *cmd])
    path = os.path.join(rootfs, ".capture")
    with open(path) as handle:
        text = handle.read()
    os.unlink(path)
    assert code == 0, text
    return text


_ADDR = re.compile(r"^\d+:\s+(\S+)\s+(inet6?)\s+([0-9a-f.:]+)/\d+.*?\bscope (\w+)", re.MULTILINE)


def inside_addresses(container: Container) -> set[str]:
    """Global addresses of every device but lo, as ``ip -o addr`` inside the container lists them."""
    return {m.group(3) for m in _ADDR.finditer(capture(container, "ip", "-o", "addr"))
            if m.group(1) != "lo" and m.group(4) == "global"}


def host_links() -> dict[str, rtnl.Link]:
    with RtnlSocket() as sock:
        return {link.name: link for link in rtnl.dump_links(sock)}


def host_global_addresses() -> set[str]:
    with RtnlSocket() as sock:
        return {a.address for a, _ in rtnl.dump_addresses_raw(sock)
                if a.scope == 0 and a.ifindex != rtnl.LOOPBACK_INDEX}


def netns_holders(netns_inode: int, pids: Iterable[int] | None = None) -> list[str]:
    """What keeps the netns ``netns_inode`` alive: processes in it, and descriptors of it held by any
    process (a pinned netns has no process, only the descriptor: ``PID fd N``); only among ``pids``
    if given. Inode numbers of dead namespaces are given to new ones: look while it can still be ours."""
    found = []
    for pid in map(str, pids) if pids is not None else filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}/ns/net").st_ino == netns_inode:
                found.append(f"{pid} in it")
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"net:[{netns_inode}]":
                        found.append(f"{pid} fd {fd}")
    return found


def _process_tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    parents = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError), open(f"/proc/{name}/stat", "rb") as handle:
            data = handle.read()
            parents[int(name)] = int(data[data.rindex(b")") + 2 :].split()[1])
    tree = [root]
    for pid in tree:
        tree += [child for child, parent in parents.items() if parent == pid]
    return tree


def own_netns_descriptors() -> dict[int, tuple[str, int | None]]:
    """Descriptors of network namespaces this test process holds, with the id each netns has here."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("net:["):
                with RtnlSocket() as sock:
                    found[int(fd)] = (target, rtnl.get_nsid(sock, ns_fd=int(fd)))
    return found


def nsid_alive(nsid: int, netns_inode: int) -> bool:
    """Whether ``nsid`` still names the container's netns (ids are reused once a netns is gone): the
    id is assigned and something (a process in it or a descriptor of it) keeps that netns alive."""
    with RtnlSocket() as sock:
        if rtnl.get_nsid(sock, nsid=nsid) is None:
            return False
    return bool(netns_holders(netns_inode))  # else the id names some other namespace now


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def netns_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def host_pair(a: str, b: str, up: bool = False) -> Iterator[None]:
    """A veth pair on the host, without IPv6 (so no address and no route), deleted whatever happens."""
    try:
        ip("link", "add", a, "type", "veth", "peer", "name", b)
        for end in (a, b):
            with open(f"/proc/sys/net/ipv6/conf/{end}/disable_ipv6", "w") as handle:
                handle.write("1")
            if up:
                ip("link", "set", end, "up")
        yield
    finally:
        for end in (a, b):
            subprocess.run(["ip", "link", "del", end], capture_output=True, check=False)


def delete_if_present(*names: str) -> None:
    for name in names:
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


# --- device types ----------------------------------------------------------------------------------


def test_veth_addresses_inside_equal_get_ips_info_and_ls(make_container):
    container = make_container("nveth", config=VETH)
    try:
        pid = container.start()
        inside = inside_addresses(container)
        assert inside == {"198.51.100.10", "203.0.113.10", "2001:db8:1::10"}
        assert set(container.get_ips()) == inside
        assert container.get_ips(family="inet") == ("198.51.100.10", "203.0.113.10")
        assert container.get_ips(family="inet6") == ("2001:db8:1::10",)
        assert container.get_ips(interface="eth0", family="inet") == ("198.51.100.10", "203.0.113.10")
        assert container.get_ips(interface="lo", scope=254) == ("127.0.0.1", "::1")
        assert container.get_interfaces() == ("lo", "eth0")
        link = capture(container, "ip", "link", "show", "eth0")
        assert "mtu 1400" in link and "00:16:3e:5a:00:01" in link and "UP" in link
        routes = capture(container, "ip", "route") + capture(container, "ip", "-6", "route")
        assert "default via 198.51.100.1 dev eth0" in routes and "default via 2001:db8:1::1 dev eth0" in routes
        assert "UP" in capture(container, "ip", "link", "show", "lo")
        host_end = host_links()["lxftv0"]
        assert host_end.up and host_end.mtu == 1400
        info = container.info()
        assert info["ipv4"] == ["198.51.100.10", "203.0.113.10"] and info["ipv6"] == ["2001:db8:1::10"]
        assert info["interfaces"] == ["lo", "eth0"]
        nsid = info["netns_id"]
        with RtnlSocket() as sock:
            assert rtnl.get_nsid(sock, pid=pid) == nsid
        listed = subprocess.run(["ip", "netns", "list-id"], capture_output=True, text=True, check=True).stdout
        assert re.search(rf"^nsid {nsid}\b", listed, re.MULTILINE)
        inode = netns_inode(pid)
        container.stop(kill=True)
        # The stop waited for the kernel's notice: the id is gone, and so is the host end.
        assert not nsid_alive(nsid, inode)
        assert "lxftv0" not in host_links()
        with pytest.raises(ContainerError, match="not running"):
            container.get_ips()
    finally:
        delete_if_present("lxftv0")


def test_ls_fancy_and_info_over_the_cli(make_container, lxcpath):
    from .conftest import run_cli

    make_container("ncli", config=(*VETH[:5], ("lxc.net.0.ipv4.address", "203.0.113.20/24")))
    container = Container("ncli", lxcpath)
    try:
        container.start()
        result = run_cli("-P", lxcpath, "ls", "--fancy", env=dict(os.environ))
        assert result.returncode == 0, result.stderr
        row = next(line for line in result.stdout.splitlines() if line.startswith("ncli"))
        assert row.split()[1:2] == ["RUNNING"] and "203.0.113.20" in row
        text = run_cli("-P", lxcpath, "info", "ncli", env=dict(os.environ)).stdout
        assert "203.0.113.20" in text and "Netns Id:" in text
        container.stop(kill=True)
    finally:
        delete_if_present("lxftv0")


def test_empty_has_its_own_netns_with_lo_up(make_container):
    container = make_container("nempty", config=(("lxc.net.0.type", "empty"),))
    pid = container.start()
    try:
        assert netns_inode(pid) != netns_inode(os.getpid())
        assert container.get_interfaces() == ("lo",)
        assert container.get_ips() == ()
        assert "UP" in capture(container, "ip", "link", "show", "lo")
        assert container.get_ips(interface="lo", family="inet", scope=254) == ("127.0.0.1",)
        assert isinstance(container.info()["netns_id"], int)
    finally:
        container.stop(kill=True)


def test_none_shares_the_host_netns(make_container):
    container = make_container("nnone", config=(("lxc.net.0.type", "none"),))
    pid = container.start()
    try:
        assert netns_inode(pid) == netns_inode(os.getpid())
        info = container.info()
        assert info["netns_id"] is None
        assert set(container.get_ips()) == host_global_addresses()
        assert "lo" in container.get_interfaces()
    finally:
        container.stop(kill=True)


def test_macvlan_on_a_host_veth_end(make_container):
    with host_pair("lxftmA", "lxftmB", up=True):
        container = make_container("nmacv", config=(
            ("lxc.net.0.type", "macvlan"),
            ("lxc.net.0.link", "lxftmA"),
            ("lxc.net.0.macvlan.mode", "bridge"),
            ("lxc.net.0.flags", "up"),
            ("lxc.net.0.mtu", "1300"),
            ("lxc.net.0.ipv4.address", "203.0.113.30/24"),
            ("lxc.net.0.ipv6.address", "2001:db8:2::30/64"),
        ))
        container.start()
        try:
            assert inside_addresses(container) == set(container.get_ips()) == {"203.0.113.30", "2001:db8:2::30"}
            link = capture(container, "ip", "link", "show", "eth0")
            assert "mtu 1300" in link and "@if" in link
            assert container.get_interfaces() == ("lo", "eth0")
        finally:
            container.stop(kill=True)
        links = host_links()
        assert {"lxftmA", "lxftmB"} <= set(links) and links["lxftmA"].mtu == 1500


def test_phys_device_goes_in_and_comes_back_with_its_name(make_container):
    with host_pair("lxftpA", "lxftpB"):
        before = host_links()["lxftpB"]
        container = make_container("nphys", config=(
            ("lxc.net.0.type", "phys"),
            ("lxc.net.0.link", "lxftpB"),
            ("lxc.net.0.name", "eth3"),
            ("lxc.net.0.flags", "up"),
            ("lxc.net.0.mtu", "1280"),
            ("lxc.net.0.hwaddr", "00:16:3e:5a:00:03"),
            ("lxc.net.0.ipv4.address", "203.0.113.40/24"),
            ("lxc.net.0.ipv6.address", "2001:db8:3::40/64"),
        ))
        container.start()
        try:
            assert "lxftpB" not in host_links()
            assert inside_addresses(container) == set(container.get_ips()) == {"203.0.113.40", "2001:db8:3::40"}
            assert container.get_interfaces() == ("lo", "eth3")
            assert "mtu 1280" in capture(container, "ip", "link", "show", "eth3")
        finally:
            container.stop(kill=True)
        after = host_links()
        assert "lxftpB" in after and "lxftpA" in after, "the phys device is back, its pair intact"
        assert (after["lxftpB"].mtu, after["lxftpB"].address) == (before.mtu, before.address)


def test_veth_in_a_user_namespace(make_container):
    # The netns belongs to the container's user namespace; the child configures it from inside.
    container = make_container("nuser", config=(
        ("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536"), *VETH[:7]))
    pid = container.start()
    try:
        assert os.stat(f"/proc/{pid}/ns/user").st_ino != os.stat("/proc/self/ns/user").st_ino
        assert inside_addresses(container) == set(container.get_ips()) == {"198.51.100.10"}
        assert "UP" in capture(container, "ip", "link", "show", "eth0")
    finally:
        container.stop(kill=True)
        delete_if_present("lxftv0")
    assert "lxftv0" not in host_links()


def test_two_devices_get_eth_names_and_their_own_addresses(make_container):
    container = make_container("ntwo", config=(
        ("lxc.net.0.type", "veth"), ("lxc.net.0.ipv4.address", "203.0.113.50/24"), ("lxc.net.0.flags", "up"),
        ("lxc.net.0.ipv4.gateway", "dev"),
        ("lxc.net.1.type", "veth"), ("lxc.net.1.ipv4.address", "198.51.100.50/24"),
    ))
    container.start()
    try:
        hosts = [d.host for d in container.current_state().record(NetnsRecord).devices]
        assert all(name.startswith("veth") and name in host_links() for name in hosts)
        assert container.get_interfaces() == ("lo", "eth0", "eth1")
        assert container.get_ips(interface="eth1") == ("198.51.100.50",)
        assert "DOWN" in capture(container, "ip", "link", "show", "eth1")  # no flags = up
        assert "default dev eth0" in capture(container, "ip", "route")  # gateway = dev: a device route
    finally:
        container.stop(kill=True)
    assert not set(hosts) & set(host_links())


def test_veth_on_a_bridge_and_auto_gateway_without_an_address(make_container):
    try:
        ip("link", "add", "lxftbr0", "type", "bridge")
        with open("/proc/sys/net/ipv6/conf/lxftbr0/disable_ipv6", "w") as handle:
            handle.write("1")
        container = make_container("nbridge", config=(*VETH[:4], ("lxc.net.0.link", "lxftbr0")))
        container.start()
        try:
            enslaved = subprocess.run(["ip", "-o", "link", "show", "master", "lxftbr0"], capture_output=True,
                                      text=True, check=True).stdout
            assert "lxftv0" in enslaved
            assert host_links()["lxftv0"].address.startswith("fe:")  # the bridge keeps its own MAC
        finally:
            container.stop(kill=True)
        auto = make_container("nauto", config=(*VETH[:4], ("lxc.net.0.link", "lxftbr0"),
                                               ("lxc.net.0.ipv4.address", "198.51.100.9/24"),
                                               ("lxc.net.0.ipv4.gateway", "auto")))
        with pytest.raises(StageError, match="lxftbr0 has no global IPv4 address"):
            auto.start()
        assert "lxftv0" not in host_links()
    finally:
        delete_if_present("lxftv0", "lxftbr0")


def test_dead_monitor_leaves_nothing_and_the_container_starts_again(make_container):
    import signal

    container = make_container("ndead", config=VETH)
    try:
        container.start()
        host_end = host_links()["lxftv0"].ifindex
        os.kill(container.current_state().monitor_pid, signal.SIGKILL)
        assert container.wait("STOPPED", 10)
        # init died with its monitor (pdeath SIGKILL), its netns with it (the kernel cleans a dead netns
        # asynchronously), and the veth pair went with the netns.
        assert wait_until(lambda: "lxftv0" not in host_links())
        container.start()  # cleans after the dead monitor first
        assert host_links()["lxftv0"].ifindex != host_end
        assert set(container.get_ips()) == {"198.51.100.10", "203.0.113.10", "2001:db8:1::10"}
        container.stop(kill=True)
        assert "lxftv0" not in host_links()
    finally:
        delete_if_present("lxftv0")


def test_cleanup_gives_a_returned_phys_device_its_name_back():
    """After a monitor died the kernel returns a phys device under its container-side name."""
    from lxcframe.plugins.netns.host import cleanup

    with host_pair("lxftcA", "lxftcB"):
        try:
            ip("link", "set", "lxftcB", "name", "lxftc3")  # as the kernel would hand it back
            returned = host_links()["lxftc3"]
            cleanup(NetnsRecord(False, None, (
                DeviceRecord(0, "phys", link="lxftcB", name="lxftc3", inside_index=99, host_index=returned.ifindex,
                             expect_hwaddr=returned.address),
                DeviceRecord(1, "veth", host="lxftgone", host_index=12345))))
            links = host_links()
            assert "lxftcB" in links and "lxftc3" not in links and links["lxftcB"].ifindex == returned.ifindex
        finally:
            delete_if_present("lxftc3")


# --- the strict-check path -------------------------------------------------------------------------


def test_target_netnsid_dump_needs_strict_check(make_container):
    container = make_container("nstrict", config=VETH)
    pid = container.start()
    try:
        state = container.current_state()
        ref = inspect.NetnsRef.from_state(state)
        assert ref.nsid is not None
        with RtnlSocket() as loose:
            ignored = rtnl.dump_addresses_raw(loose, ref.nsid)
            own = rtnl.dump_addresses_raw(loose)
        # Without NETLINK_GET_STRICT_CHK the kernel drops IFA_TARGET_NETNSID: these are the host's.
        assert [a for a, _ in ignored] == [a for a, _ in own]
        assert not any(rtnl.IFA_TARGET_NETNSID in attrs for _, attrs in ignored)
        with RtnlSocket(strict=True) as strict:
            honoured = rtnl.dump_addresses_raw(strict, ref.nsid)
        assert all(rtnl.IFA_TARGET_NETNSID in attrs for _, attrs in honoured)
        container_global = {a.address for a, _ in honoured if a.scope == 0}
        assert container_global == set(container.get_ips()) == inside_addresses(container)
        assert not container_global & host_global_addresses()
        snap = inspect.read(ref)
        assert snap.path == inspect.FAST
        # The fallback (no id: a socket made inside the netns) agrees with the fast path.
        slow = inspect.read(inspect.NetnsRef(pid, state.init_start))
        assert slow.path == inspect.FALLBACK
        assert (slow.links, slow.addresses) == (snap.links, snap.addresses)
    finally:
        container.stop(kill=True)
        delete_if_present("lxftv0")


def test_get_ips_with_the_network_plugin_disabled_is_an_error(make_container, lxcpath):
    container = make_container("nnoplug", disable=("netns",))  # no plugin: no id, no devices, lo down
    container.start()
    try:
        assert container.current_state().record(NetnsRecord) is None
        # Not an empty tuple: a caller polling get_ips for an address would wait for ever.
        with pytest.raises(ContainerError) as info:
            container.get_ips()
        assert str(info.value) == "no enabled plugin reads a container's addresses (enable netns)"
        with pytest.raises(ContainerError) as info:
            container.get_interfaces()
        assert str(info.value) == "no enabled plugin reads a container's interfaces (enable netns)"
        # A caller with the plugin reads the same container without a recorded id: it enters the netns.
        enabled = Container("nnoplug", lxcpath)
        assert enabled.get_interfaces() == ("lo",)
        assert enabled.get_ips(interface="lo", scope=254) == ()
    finally:
        container.stop(kill=True)


def test_check_lists_the_netns_probes_once(rundir):
    from .conftest import run_cli

    result = run_cli("check", env=dict(os.environ))
    rows = [line.split(None, 3) for line in result.stdout.splitlines()[1:] if line[:1].strip()]
    ours = {row[1]: row for row in rows if row[0] == "netns"}
    assert sorted(ours) == ["netns:ids", "netns:strict-check", "netns:target-netnsid"]
    assert [row[1] for row in rows].count("netns:ids") == 1, result.stdout
    assert all(row[2] == "yes" for row in ours.values()), result.stdout
    assert ours["netns:target-netnsid"][3].startswith(inspect.FAST)


# --- failures unwind -------------------------------------------------------------------------------


class NoteNetwork:
    """Appends the netns id and netns inode each start got to a file."""

    def __init__(self, note: str) -> None:
        self.note = note

    @hookimpl(trylast=True)
    def lxcframe_setup_network(self, ctx, pid):
        with open(self.note, "a") as handle:
            handle.write(f"{ctx.state_records.get(NetnsRecord).nsid} {netns_inode(pid)}\n")


def noted_netns(note: Path) -> list[tuple[int, int]]:
    """The (netns id, netns inode) of each start a NoteNetwork saw, in order."""
    return [(int(nsid), int(inode)) for nsid, inode in (line.split() for line in note.read_text().splitlines())]


class FailAfterNetwork(NoteNetwork):
    """Notes the netns id the start got, then fails in the child's pre-mount stage."""

    @hookimpl
    def lxcframe_child_pre_mount(self):
        raise RuntimeError("injected failure after the network stage")


def test_failed_start_after_network_leaves_nothing(make_container, tmp_path):
    note = tmp_path / "nsid"
    plugins = Plugins(extra=[("failer", FailAfterNetwork(str(note)))])
    with host_pair("lxftfA", "lxftfB"):
        container = make_container("nfail", plugins=plugins, config=(
            *VETH,
            ("lxc.net.1.type", "phys"), ("lxc.net.1.link", "lxftfB"), ("lxc.net.1.mtu", "1300"),
        ))
        try:
            with pytest.raises(StageError) as info:
                container.start()
            assert (info.value.stage, info.value.plugin) == ("pre-mount", "failer")
            links = host_links()
            assert "lxftv0" not in links
            assert "lxftfB" in links and links["lxftfB"].mtu == 1500, "phys back with its name and MTU"
            [(nsid, inode)] = noted_netns(note)
            assert not nsid_alive(nsid, inode)
        finally:
            delete_if_present("lxftv0")


def test_execute_leaves_no_netns_id_and_no_netns_descriptor_in_the_caller(make_container, tmp_path):
    # execute runs the monitor in the caller's own process: the descriptor pinning the container's
    # netns is the caller's, and would keep the netns and its id alive after the command ended.
    note = tmp_path / "nsids"
    container = make_container("nexec", plugins=Plugins(extra=[("note", NoteNetwork(str(note)))]),
                               config=(*VETH[:4], ("lxc.net.0.ipv4.address", "203.0.113.60/24")))
    held_before = own_netns_descriptors()
    try:
        for run in range(3):
            assert container.execute(["/bin/sh", "-c", "ip -o addr show eth0 | grep -q 203.0.113.60"]) == 0
            nsid, inode = noted_netns(note)[run]
            # No descriptor keeps the container's netns, or its id, in the caller.
            assert own_netns_descriptors() == held_before, f"the netns with id {nsid} is still held"
            # Checked at once, and only in this process and its children: other tests' containers may
            # get the same id and inode number as soon as this netns is gone.
            ours = _process_tree(os.getpid())
            assert netns_holders(inode, ours) == [], f"netns {inode} (id {nsid}) is still held"
    finally:
        delete_if_present("lxftv0")
    assert len(noted_netns(note)) == 3
    assert "lxftv0" not in host_links()


def test_netns_holders_sees_a_descriptor(tmp_path):
    """The check above can see a netns kept by nothing but a descriptor (as a leaked pin would)."""
    ready = tmp_path / "ready"
    child = subprocess.Popen(["unshare", "--net", "sh", "-c", f"touch {ready}; exec sleep 60"])
    pin = None
    try:
        assert wait_until(lambda: ready.exists())
        inode = netns_inode(child.pid)
        pin = os.open(f"/proc/{child.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        nsid = assign_nsid(pin)
        child.kill()
        child.wait()
        assert netns_holders(inode) == [f"{os.getpid()} fd {pin}"]
        assert own_netns_descriptors() == {pin: (f"net:[{inode}]", nsid)}
        assert nsid_alive(nsid, inode)
        assert not wait_nsid_released(nsid, 0.05)  # the descriptor keeps the namespace, and its id
        os.close(pin)
        pin = None
        assert wait_nsid_released(nsid, 5)
        assert not nsid_alive(nsid, inode)
    finally:
        if pin is not None:
            os.close(pin)
        child.kill()
        child.wait()


def test_failing_up_script_fails_the_start_and_unwinds(make_container, tmp_path):
    script = tmp_path / "up.sh"
    script.write_text("#!/bin/sh\necho refusing >&2\nexit 3\n")
    script.chmod(0o755)
    container = make_container("nscrf", config=(*VETH[:4], ("lxc.net.0.script.up", str(script))))
    try:
        with pytest.raises(StageError, match="exited with status 3: refusing") as info:
            container.start()
        assert (info.value.stage, info.value.plugin) == ("network", "netns")
        assert "lxftv0" not in host_links()
    finally:
        delete_if_present("lxftv0")


def test_scripts_get_lxc_arguments_and_environment(make_container, tmp_path):
    out = tmp_path / "calls"
    script = tmp_path / "net.sh"
    script.write_text(f"#!/bin/sh\necho \"ARGS $*\" >> {out}\nenv | grep -E '^LXC_(NET|HOOK|NAME)' | sort >> {out}\n")
    script.chmod(0o755)
    container = make_container("nscr", config=(
        *VETH[:4], ("lxc.net.0.script.up", str(script)), ("lxc.net.0.script.down", str(script)),
        ("lxc.net.1.type", "empty"), ("lxc.net.1.script.up", str(script)),
    ))
    try:
        container.start()
        container.stop(kill=True)
    finally:
        delete_if_present("lxftv0")
    text = out.read_text()
    assert "ARGS nscr net up veth lxftv0" in text  # no link: LXC's empty word vanishes
    assert "ARGS nscr net up empty" in text
    assert "ARGS nscr net down veth lxftv0" in text
    for line in ("LXC_NAME=nscr", "LXC_HOOK_SECTION=net", "LXC_NET_TYPE=veth", "LXC_NET_PEER=lxftv0",
                 "LXC_HOOK_TYPE=down"):
        assert line in text.splitlines()


# --- config errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("mtu, accepted", [("67", False), ("68", True), ("65535", True), ("65536", False),
                                           ("70000", False), ("0x500", False)])
def test_mtu_bounds_are_68_and_65535(make_container, mtu, accepted):
    container = make_container("nmtu")
    path, number = _append(container, ["lxc.net.0.type = veth", f"lxc.net.0.mtu = {mtu}"])
    if accepted:
        assert container.load_config().get("lxc.net.0.mtu") == int(mtu)
        return
    with pytest.raises(ConfigErrors) as info:
        container.load_config()
    assert str(info.value) == f"{path}:{number + 1}: lxc.net.0.mtu = {mtu!r}: expected an MTU between 68 and 65535"


def _append(container: Container, lines: list[str]) -> tuple[str, int]:
    path = container.config_file_name
    with open(path) as handle:
        first = len(handle.read().splitlines()) + 1
    with open(path, "a") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return path, first


@pytest.mark.parametrize("line, reason", [
    ("lxc.net.0.type = vxlan", "expected one of"),
    ("lxc.net.0.vlan.id = 5000", "between 0 and 4094"),
    ("lxc.net.0.ipvlan.mode = foo", "expected one of l3, l3s, l2"),
    ("lxc.net.x.type = veth", "not a network key"),
    ("lxc.net.0.tpye = veth", "not a network key"),
    ("lxc.net.0.ipv4.address = 198.51.100.300/24", "not an IPv4 address"),
    ("lxc.net.0.ipv4.address = 198.51.100.3/33", "prefix length"),
    ("lxc.net.0.ipv6.address = 2001:db8::zz/64", "not an IPv6 address"),
    ("lxc.net.0.hwaddr = 01:16:3e:00:00:01", "multicast"),
    ("lxc.net.0.mtu = 20", "MTU"),
    ("lxc.net.0.name = a-name-much-too-long", "at most 15"),
    ("lxc.net.0.flags = down", "only flag"),
    ("lxc.net = veth", "only an empty value"),
    ("lxc.net.0.veth.vlan.id = 5", "not supported"),
])
def test_bad_lines_are_errors_with_file_and_line(make_container, line, reason):
    container = make_container("nbad")
    path, number = _append(container, ["lxc.net.0.type = veth", line])
    with pytest.raises(ConfigError) as info:
        container.load_config()
    assert f"{path}:{number + 1}:" in str(info.value) and reason in str(info.value)


@pytest.mark.parametrize("lines, at, reason", [
    (["lxc.net.0.type = macvlan"], 0, "needs lxc.net.0.link"),
    (["lxc.net.0.type = phys"], 0, "needs lxc.net.0.link"),
    (["lxc.net.0.link = br0"], 0, "has no lxc.net.0.type"),
    (["lxc.net.0.type = veth", "lxc.net.0.flags = up", "lxc.net.0.ipv4.address = 198.51.100.2/24",
      "lxc.net.0.ipv4.gateway = 203.0.113.1"], 3, "outside the networks"),
    (["lxc.net.0.type = veth", "lxc.net.0.ipv4.address = 198.51.100.2/24",
      "lxc.net.0.ipv4.gateway = 198.51.100.1"], 2, "needs the device up"),
    (["lxc.net.0.type = none", "lxc.net.1.type = none"], 1, "twice"),
    (["lxc.net.0.type = none", "lxc.net.1.type = veth"], 0, "cannot be combined"),
    (["lxc.net.0.type = veth", "lxc.net.0.macvlan.mode = bridge"], 1, "only applies to type macvlan"),
    (["lxc.net.0.type = empty", "lxc.net.0.ipv4.address = 203.0.113.1/24"], 1, "no device"),
    (["lxc.net.0.type = veth", "lxc.net.0.name = eth0", "lxc.net.1.type = veth", "lxc.net.1.name = eth0"], 3,
     "already the name"),
    (["lxc.net.0.type = veth", "lxc.net.0.mtu = 1000", "lxc.net.0.ipv6.address = 2001:db8::1"], 1, "1280"),
])
def test_inconsistent_entries_fail_validation_naming_the_line(make_container, lines, at, reason):
    container = make_container("ninc")
    path, number = _append(container, lines)
    with pytest.raises(ConfigError) as info:
        container.start()
    assert f"{path}:{number + at}:" in str(info.value) and reason in str(info.value)


def test_empty_lxc_net_clears_every_entry(make_container):
    container = make_container("nclear")
    _append(container, ["lxc.net.0.type = macvlan", "lxc.net.1.type = veth", "lxc.net ="])
    config = container.load_config()
    assert config.keys_under("lxc.net.") == []


def test_get_ips_of_a_stopped_container_is_an_error(make_container):
    container = make_container("nstopped")
    with pytest.raises(ContainerError, match="not running"):
        container.get_ips()
    with pytest.raises(ContainerError, match="not running"):
        container.get_interfaces()


def test_plugin_module_does_not_import_netlink_code():
    code = ("import sys, lxcframe.plugins.netns; "
            "print(sorted(m for m in sys.modules if m.startswith(('pyroute2', 'lxcframe.plugins.netns.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_api_extensions_declared():
    plugins = Plugins()
    assert plugins.has_api_extension("network_phys_macvlan_mtu")
    assert plugins.has_api_extension("network_gateway_device_route")
    for name in ("network_veth_router", "network_veth_routes", "network_ipvlan", "network_l2proxy"):
        assert plugins.has_api_extension(name)
    assert not plugins.has_api_extension("network_bridge_vlan")


def test_raw_socket_sees_our_own_namespace():
    with RtnlSocket() as sock:
        assert next(link for link in rtnl.dump_links(sock) if link.name == "lo").ifindex == rtnl.LOOPBACK_INDEX
        assert any(a.address == "127.0.0.1" and a.family == socket.AF_INET for a, _ in rtnl.dump_addresses_raw(sock))


# --- pyroute2 does the configuration, and none of it reaches a child -------------------------------


def _descriptors_and_threads() -> dict[str, object]:
    """This process's netlink sockets and epoll descriptors (what an IPRoute is made of), its thread
    count, and whether pyroute2 is loaded."""
    netlink, epolls = [], []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target == "anon_inode:[eventpoll]":
                epolls.append(int(fd))
            elif target.startswith("socket:"):
                with socket.socket(fileno=os.dup(int(fd))) as probe:
                    if probe.family == socket.AF_NETLINK:
                        netlink.append(int(fd))
    return {"netlink": sorted(netlink), "epoll": sorted(epolls), "threads": len(os.listdir("/proc/self/task")),
            "pyroute2": "pyroute2.iproute.linux" in sys.modules}


class RecordPyroute2Leftovers:
    """Writes what the monitor holds right after the network stage, and the child before it mounts."""

    def __init__(self, note: str) -> None:
        self.note = note

    def _write(self, where: str) -> None:
        import json

        with open(f"{self.note}.{where}", "w") as handle:
            json.dump(_descriptors_and_threads(), handle)

    @hookimpl(trylast=True)
    def lxcframe_setup_network(self, ctx, pid):
        self._write("monitor")

    @hookimpl
    def lxcframe_child_pre_mount(self):
        self._write("child")


def test_no_pyroute2_socket_or_thread_reaches_the_child_or_stays_in_the_monitor(make_container, tmp_path):
    import json

    note = tmp_path / "held"
    plugins = Plugins(extra=[("leftovers", RecordPyroute2Leftovers(str(note)))])
    container = make_container("nleft", plugins=plugins, config=VETH)
    try:
        container.start()
        assert set(container.get_ips(family="inet")) == {"198.51.100.10", "203.0.113.10"}
        monitor = json.loads((tmp_path / "held.monitor").read_text())
        child = json.loads((tmp_path / "held.child").read_text())
        container.stop(kill=True)
    finally:
        delete_if_present("lxftv0")
    # Both used pyroute2 (the child configured eth0 with it), and neither keeps any of it: the child made
    # its own IPRoute after the fork and closed it; the monitor closed its own before the stage ended.
    assert child == {"netlink": [], "epoll": [], "threads": 1, "pyroute2": True}
    assert monitor == {"netlink": [], "epoll": [], "threads": 1, "pyroute2": True}


def _inside_links(pid: int) -> dict[str, rtnl.Link]:
    ns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with RtnlSocket(ns_fd=ns_fd) as sock:
            return {link.name: link for link in rtnl.dump_links(sock)}
    finally:
        os.close(ns_fd)


def _inside_routes(pid: int, family: str) -> list[dict[str, object]]:
    import json

    out = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-j", family, "route"], capture_output=True,
                         text=True, check=True).stdout
    return [route for route in json.loads(out) if route.get("protocol") != "kernel"
            and not str(route.get("dst", "")).startswith(("fe80", "ff00"))]


def test_veth_macvlan_and_phys_read_back_from_the_kernel(make_container):
    with host_pair("lxftkA", "lxftkB", up=True), host_pair("lxftkC", "lxftkD"):
        phys_before = host_links()["lxftkD"]
        container = make_container("nkern", config=(
            *VETH[:5], ("lxc.net.0.mtu", "1450"), ("lxc.net.0.ipv4.address", "198.51.100.70/24"),
            ("lxc.net.0.ipv4.gateway", "198.51.100.1"),
            ("lxc.net.1.type", "macvlan"), ("lxc.net.1.link", "lxftkA"), ("lxc.net.1.flags", "up"),
            ("lxc.net.1.mtu", "1400"), ("lxc.net.1.hwaddr", "00:16:3e:5a:00:11"),
            ("lxc.net.1.ipv6.address", "2001:db8:7::71/64"), ("lxc.net.1.ipv6.gateway", "2001:db8:7::1"),
            ("lxc.net.2.type", "phys"), ("lxc.net.2.link", "lxftkD"), ("lxc.net.2.name", "eth7"),
            ("lxc.net.2.flags", "up"), ("lxc.net.2.mtu", "1300"), ("lxc.net.2.ipv4.address", "203.0.113.72/28"),
        ))
        try:
            pid = container.start()
            links = _inside_links(pid)
            assert sorted(links) == ["eth0", "eth1", "eth7", "lo"]
            assert (links["eth0"].mtu, links["eth0"].address, links["eth0"].up) == (1450, "00:16:3e:5a:00:01", True)
            assert (links["eth1"].mtu, links["eth1"].address, links["eth1"].up) == (1400, "00:16:3e:5a:00:11", True)
            assert (links["eth7"].mtu, links["eth7"].address, links["eth7"].up) == (1300, phys_before.address, True)
            assert links["lo"].up
            assert container.get_ips(interface="eth0") == ("198.51.100.70",)
            assert container.get_ips(interface="eth1") == ("2001:db8:7::71",)
            assert container.get_ips(interface="eth7") == ("203.0.113.72",)
            assert [(r["dst"], r.get("gateway"), r["dev"]) for r in _inside_routes(pid, "-4")] == [
                ("default", "198.51.100.1", "eth0")]
            assert [(r["dst"], r.get("gateway"), r["dev"]) for r in _inside_routes(pid, "-6")] == [
                ("default", "2001:db8:7::1", "eth1")]
            host_end = host_links()["lxftv0"]
            assert (host_end.mtu, host_end.up) == (1450, True)
        finally:
            container.stop(kill=True)
            delete_if_present("lxftv0")
        after = host_links()
        assert "lxftv0" not in after
        assert (after["lxftkD"].mtu, after["lxftkD"].address) == (phys_before.mtu, phys_before.address)


class FailAtStartHost(NoteNetwork):
    """Notes the netns id the start got, then fails on the host after the child pivoted."""

    @hookimpl
    def lxcframe_start_host(self, ctx, pid):
        raise RuntimeError("injected failure at start-host")


def test_failure_after_pivot_unwinds_every_link_and_the_netns_id(make_container, tmp_path):
    note = tmp_path / "nsid"
    plugins = Plugins(extra=[("failer", FailAtStartHost(str(note)))])
    with host_pair("lxftuA", "lxftuB", up=True), host_pair("lxftuC", "lxftuD"):
        before = host_links()
        container = make_container("nunwind", plugins=plugins, config=(
            *VETH,
            ("lxc.net.1.type", "macvlan"), ("lxc.net.1.link", "lxftuA"), ("lxc.net.1.flags", "up"),
            ("lxc.net.2.type", "phys"), ("lxc.net.2.link", "lxftuD"), ("lxc.net.2.mtu", "1280"),
            ("lxc.net.2.hwaddr", "00:16:3e:5a:00:21"),
            ("lxc.net.3.type", "empty"),
        ))
        try:
            with pytest.raises(StageError) as info:
                container.start()
            assert (info.value.stage, info.value.plugin) == ("start-host", "failer")
            after = host_links()
            # Exactly the links there were: the veth's host end gone, the phys back with its name, MTU, MAC.
            assert sorted(after) == sorted(before)
            assert (after["lxftuD"].mtu, after["lxftuD"].address) == (before["lxftuD"].mtu, before["lxftuD"].address)
            [(nsid, inode)] = noted_netns(note)
            assert not nsid_alive(nsid, inode)
        finally:
            delete_if_present("lxftv0")


def test_get_ips_refuses_an_unknown_family(make_container):
    container = make_container("nfam", config=(("lxc.net.0.type", "empty"),))
    container.start()
    try:
        with pytest.raises(ContainerError) as info:
            container.get_ips(family="ipx")
        assert str(info.value) == "family must be 'inet', 'inet6' or None, not 'ipx'"
    finally:
        container.stop(kill=True)


def test_a_kernel_refusal_fails_the_start_naming_the_request(make_container):
    container = make_container("nnodev", config=(("lxc.net.0.type", "phys"), ("lxc.net.0.link", "lxftabsent")))
    with pytest.raises(StageError) as info:
        container.start()
    assert (info.value.stage, info.value.plugin) == ("network", "netns")
    assert "find link lxftabsent: No such device" in str(info.value)


def test_get_ips_with_a_timeout_waits_for_an_address_to_show_up(make_container):
    container = make_container("nwait", config=(("lxc.net.0.type", "veth"), ("lxc.net.0.name", "eth0"),
                                                 ("lxc.net.0.veth.pair", "lxftw0"), ("lxc.net.0.flags", "up")))
    container.start()
    try:
        began = time.monotonic()
        assert container.get_ips(family="inet", timeout=0.3) == ()  # none comes: () once the time is out
        assert time.monotonic() - began >= 0.3
        # An address that shows up later, as a DHCP client's would: the call returns it, not ().
        pid = container.attach(["/bin/sh", "-c", "sleep 0.4; ip addr add 192.0.2.77/24 dev eth0"])
        try:
            assert container.get_ips(family="inet", timeout=20) == ("192.0.2.77",)
        finally:
            assert os.waitpid(pid, 0)[1] == 0
    finally:
        container.stop(kill=True)
