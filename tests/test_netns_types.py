"""vlan and ipvlan devices, veth host routes, veth router mode and l2proxy, with real containers.

Each test runs its containers from a forked child that made a network namespace of its own first
(:func:`private_host`): the monitor forks from that child (``server=False``), so what a start does "on
the host" (host veth ends, routes, neighbour proxies, forwarding sysctls, the uplink devices) happens in
that private namespace, never in the machine's. A side namespace (:class:`Side`, an ``unshare --net``
process) plays another machine on the uplink, and pings the container from there.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lxcframe import syscalls
from lxcframe.container import Container
from lxcframe.errors import StageError
from lxcframe.hooks import hookimpl
from lxcframe.plugin_manager import Plugins

from .forked import run_in_child
from .server_fixtures import process_gone, wait_until

pytestmark = pytest.mark.container


# --- the private host and its side -----------------------------------------------------------------------


def run(command: str) -> str:
    """A shell command in this process's network namespace; its output, or an assertion with its error."""
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command}: {done.stderr.strip()}"
    return done.stdout


def private_host(func: Callable[[], Any], timeout: int = 120) -> Any:
    """``func()`` in a forked child in a network namespace of its own, with lo up; its result."""

    def child() -> Any:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        run("ip link set lo up")
        return func()

    return run_in_child(child, timeout=timeout)


class Side:
    """Another network namespace (a sleeping ``unshare --net`` process), joined to this one by a veth pair:
    ``uplink`` here, ``side0`` there."""

    def __init__(self, uplink: str) -> None:
        self.process = subprocess.Popen(["unshare", "--net", "sleep", "120"])
        self.uplink = uplink
        # The pair is made here, and its far end moved into the side namespace once that exists.
        run(f"ip link add {uplink} type veth peer name side0")
        for _ in range(200):
            if os.readlink(f"/proc/{self.process.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.01)
        run(f"ip link set side0 netns {self.process.pid} && ip link set {uplink} up")
        self.run("ip link set lo up && ip link set side0 up")

    def run(self, command: str) -> str:
        return run(f"nsenter -t {self.process.pid} -n sh -c '{command}'")

    def ping(self, address: str, attempts: int = 10) -> bool:
        """Whether ``address`` answers a ping from the side (retried while IPv6 addresses finish DAD)."""
        for _ in range(attempts):
            done = subprocess.run(["nsenter", "-t", str(self.process.pid), "-n", "busybox", "ping", "-c", "1",
                                   "-W", "1", address], capture_output=True, check=False)
            if done.returncode == 0:
                return True
            time.sleep(0.3)
        return False

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def side(uplink: str) -> Iterator[Side]:
    made = Side(uplink)
    try:
        yield made
    finally:
        made.close()


def routes() -> list[dict[str, Any]]:
    """Every IPv4 and IPv6 route of the main table here, as ``ip -j route`` gives them."""
    return [*json.loads(run("ip -d -j -4 route")), *json.loads(run("ip -d -j -6 route"))]


def routes_via(device: str) -> set[str]:
    return {route["dst"] for route in routes() if route.get("dev") == device and not route["dst"].startswith("fe80")}


def proxies() -> set[tuple[str, str]]:
    """Every neighbour proxy entry here, as (device, address)."""
    found = set()
    for family in ("-4", "-6"):
        for line in run(f"ip {family} neigh show proxy").splitlines():
            words = line.split()
            found.add((words[words.index("dev") + 1], words[0]))
    return found


def sysctl(path: str) -> str:
    with open(f"/proc/sys/net/{path}") as handle:
        return handle.read().strip()


def set_sysctl(path: str, value: str) -> None:
    with open(f"/proc/sys/net/{path}", "w") as handle:
        handle.write(value)


def links() -> set[str]:
    return {name for _, name in socket.if_nameindex()}


def kernel_makes(kind_args: str) -> bool:
    """Whether this kernel creates a device of a kind (``ip link add ... type KIND ...`` on a veth end)."""
    made = subprocess.run(f"ip link add lxftprobe {kind_args}", shell=True, capture_output=True, check=False)
    subprocess.run("ip link del lxftprobe", shell=True, capture_output=True, check=False)
    return made.returncode == 0


def container(lxcpath: str, name: str, plugins: Plugins | None = None) -> Container:
    """The container ``name`` (made by the test's fixture), started and stopped from this process."""
    return Container(name, lxcpath, server=False, plugins=plugins)


# --- veth routes -----------------------------------------------------------------------------------------


def test_veth_routes_on_the_host_end_while_running_and_gone_after_stop(make_container, lxcpath):
    make_container("nroutes", config=(
        ("lxc.net.0.type", "veth"), ("lxc.net.0.veth.pair", "lxftr0"), ("lxc.net.0.flags", "up"),
        ("lxc.net.0.ipv4.address", "192.0.2.10/24"),
        ("lxc.net.0.veth.ipv4.route", "198.51.100.0/24"), ("lxc.net.0.veth.ipv4.route", "203.0.113.64/26"),
        ("lxc.net.0.veth.ipv6.route", "2001:db8:6::/64"),
    ))

    def body() -> dict[str, Any]:
        c = container(lxcpath, "nroutes")
        c.start()
        try:
            running = routes_via("lxftr0")
            scopes = {route["dst"]: (route.get("scope"), route.get("protocol")) for route in routes()
                      if route.get("dev") == "lxftr0" and "." in route["dst"]}
        finally:
            c.stop(kill=True)
        return {"running": running, "scopes": scopes, "after": routes_via("lxftr0"), "links": links()}

    seen = private_host(body)
    assert seen["running"] == {"198.51.100.0/24", "203.0.113.64/26", "2001:db8:6::/64"}
    # As LXC: device routes in the main table, scope link, protocol boot.
    assert set(seen["scopes"].values()) == {("link", "boot")}
    assert seen["after"] == set() and "lxftr0" not in seen["links"]


# --- router mode -----------------------------------------------------------------------------------------


ROUTER = (
    ("lxc.net.0.type", "veth"), ("lxc.net.0.veth.mode", "router"), ("lxc.net.0.veth.pair", "lxftrt0"),
    ("lxc.net.0.flags", "up"),
    ("lxc.net.0.ipv4.address", "198.51.100.10/32"), ("lxc.net.0.ipv4.gateway", "203.0.113.1"),
    ("lxc.net.0.ipv6.address", "2001:db8:5::10/128"), ("lxc.net.0.ipv6.gateway", "2001:db8:4::1"),
)


def _router_side(far: Side) -> None:
    """The side's network 203.0.113.0/24 and 2001:db8:4::/64 on the uplink, this host its router."""
    run(f"ip addr add 203.0.113.1/24 dev {far.uplink} && ip -6 addr add 2001:db8:4::1/64 dev {far.uplink} nodad")
    far.run("ip addr add 203.0.113.2/24 dev side0 && ip -6 addr add 2001:db8:4::2/64 dev side0 nodad && "
            "ip route add default via 203.0.113.1 && ip -6 route add default via 2001:db8:4::1")
    set_sysctl("ipv4/conf/all/forwarding", "1")
    set_sysctl("ipv6/conf/all/forwarding", "1")


def test_router_mode_container_is_reached_through_the_host_end(make_container, lxcpath):
    make_container("nrouter", config=ROUTER)

    def body() -> dict[str, Any]:
        with side("lxftup0") as far:
            _router_side(far)
            c = container(lxcpath, "nrouter")
            c.start()
            try:
                seen = {
                    "ping4": far.ping("198.51.100.10"), "ping6": far.ping("2001:db8:5::10"),
                    "routes": routes_via("lxftrt0"), "proxies": proxies(),
                    "sysctls": (sysctl("ipv4/conf/lxftrt0/forwarding"), sysctl("ipv6/conf/lxftrt0/forwarding"),
                                sysctl("ipv6/conf/lxftrt0/proxy_ndp")),
                    "master": json.loads(run("ip -j link show lxftrt0"))[0].get("master"),
                    "inside": c.get_ips(),
                }
            finally:
                c.stop(kill=True)
            seen.update(after_routes=routes_via("lxftrt0"), after_proxies=proxies(), links=links(),
                        ping_after=far.ping("198.51.100.10", attempts=1))
        return seen

    seen = private_host(body)
    assert seen["ping4"] and seen["ping6"], "the side reaches the container through the host end"
    assert seen["inside"] == ("198.51.100.10", "2001:db8:5::10")
    assert seen["routes"] == {"198.51.100.10", "2001:db8:5::10"}
    assert seen["proxies"] == {("lxftrt0", "203.0.113.1"), ("lxftrt0", "2001:db8:4::1")}
    assert seen["sysctls"] == ("1", "1", "1") and seen["master"] is None
    assert seen["after_routes"] == set() and seen["after_proxies"] == set() and "lxftrt0" not in seen["links"]
    assert not seen["ping_after"]


def test_router_mode_with_an_ipv6_gateway_needs_ipv6_forwarding(make_container, lxcpath):
    make_container("nrtfwd", config=ROUTER)

    def body() -> tuple[str, set[str], set[tuple[str, str]]]:
        set_sysctl("ipv6/conf/all/forwarding", "0")
        with pytest.raises(StageError) as info:
            container(lxcpath, "nrtfwd").start()
        return str(info.value), links(), proxies()

    message, left, proxied = private_host(body)
    assert "lxc.net.0.veth.mode = router with an IPv6 gateway needs sysctl net.ipv6.conf.all.forwarding=1" in message
    assert left == {"lo"} and proxied == set()


# --- l2proxy ---------------------------------------------------------------------------------------------


L2PROXY = (
    ("lxc.net.0.type", "veth"), ("lxc.net.0.veth.mode", "router"), ("lxc.net.0.veth.pair", "lxftl2"),
    ("lxc.net.0.link", "lxftup1"), ("lxc.net.0.l2proxy", "1"), ("lxc.net.0.flags", "up"),
    ("lxc.net.0.ipv4.address", "203.0.113.10/32"), ("lxc.net.0.ipv4.gateway", "203.0.113.1"),
    ("lxc.net.0.ipv6.address", "2001:db8:4::10/128"), ("lxc.net.0.ipv6.gateway", "2001:db8:4::1"),
)


def _l2proxy_uplink(far: Side) -> None:
    """The uplink and the side share 203.0.113.0/24 and 2001:db8:4::/64; the container's addresses are in
    them too, so the side asks the link itself for them (ARP, NDP) and the proxy entries answer."""
    run(f"ip addr add 203.0.113.1/24 dev {far.uplink} && ip -6 addr add 2001:db8:4::1/64 dev {far.uplink} nodad")
    far.run("ip addr add 203.0.113.2/24 dev side0 && ip -6 addr add 2001:db8:4::2/64 dev side0 nodad")
    set_sysctl("ipv6/conf/all/forwarding", "1")  # IPv6 routes nothing without it (router mode checks it)
    for path in ("ipv4/conf/lxftup1/forwarding", "ipv6/conf/lxftup1/forwarding", "ipv6/conf/lxftup1/proxy_ndp"):
        set_sysctl(path, "1")


def test_l2proxy_answers_for_the_container_on_the_link(make_container, lxcpath):
    make_container("nl2p", config=L2PROXY)

    def body() -> dict[str, Any]:
        with side("lxftup1") as far:
            _l2proxy_uplink(far)
            c = container(lxcpath, "nl2p")
            c.start()
            try:
                seen = {"ping4": far.ping("203.0.113.10"), "ping6": far.ping("2001:db8:4::10"),
                        "proxies": proxies()}
            finally:
                c.stop(kill=True)
            seen.update(after=proxies(), links=links())
        return seen

    seen = private_host(body)
    assert seen["ping4"] and seen["ping6"], "the side reaches the container on its own network"
    assert {(dev, address) for dev, address in seen["proxies"] if dev == "lxftup1"} == {
        ("lxftup1", "203.0.113.10"), ("lxftup1", "2001:db8:4::10")}
    # The link stays; its entries went with the stop (and the host end's with it).
    assert seen["after"] == set() and "lxftup1" in seen["links"] and "lxftl2" not in seen["links"]


class FailAfterNetwork:
    @hookimpl
    def lxcframe_child_pre_mount(self):
        raise RuntimeError("injected failure after the network stage")


def test_l2proxy_entries_are_removed_when_a_start_fails_later(make_container, lxcpath):
    make_container("nl2fail", config=L2PROXY)

    def body() -> tuple[str, set[tuple[str, str]], set[str]]:
        with side("lxftup1") as far:
            _l2proxy_uplink(far)
            plugins = Plugins(extra=[("failer", FailAfterNetwork())])
            with pytest.raises(StageError) as info:
                container(lxcpath, "nl2fail", plugins).start()
            return info.value.stage, proxies(), links()

    stage, left, names = private_host(body)
    assert stage == "pre-mount"
    assert left == set() and "lxftl2" not in names


def test_l2proxy_needs_forwarding_on_the_link_and_leaves_nothing(make_container, lxcpath):
    make_container("nl2fwd", config=L2PROXY)

    def body() -> tuple[str, set[tuple[str, str]], set[str]]:
        with side("lxftup1") as far:
            _l2proxy_uplink(far)
            set_sysctl("ipv4/conf/lxftup1/forwarding", "0")
            with pytest.raises(StageError) as info:
                container(lxcpath, "nl2fwd").start()
            return str(info.value), proxies(), links()

    message, left, names = private_host(body)
    assert ("lxc.net.0.l2proxy needs sysctl net.ipv4.conf.lxftup1.forwarding=1 "
            "(/proc/sys/net/ipv4/conf/lxftup1/forwarding is not 1)") in message
    assert left == set() and names == {"lo", "lxftup1"}


def test_a_dead_monitors_l2proxy_entries_are_cleaned_up_after_it(make_container, lxcpath):
    import signal

    make_container("nl2dead", config=L2PROXY)

    def body() -> dict[str, Any]:
        with side("lxftup1") as far:
            _l2proxy_uplink(far)
            c = container(lxcpath, "nl2dead")
            c.start()
            recorded = c.current_state()
            os.kill(recorded.monitor_pid, signal.SIGKILL)
            wait_until(lambda: process_gone(recorded.monitor_pid), 10, "the monitor gone")
            wait_until(lambda: process_gone(recorded.init_pid), 10, "init gone with its monitor")
            seen: dict[str, Any] = {"left_by_the_dead": proxies()}
            c.stop(kill=True)  # the first command after the dead monitor cleans up after it
            seen["cleaned"] = proxies()
            c.start()
            try:
                seen["ping"] = far.ping("203.0.113.10")
            finally:
                c.stop(kill=True)
            seen["after"] = proxies()
        return seen

    seen = private_host(body)
    assert seen["left_by_the_dead"] == {("lxftup1", "203.0.113.10"), ("lxftup1", "2001:db8:4::10")}
    assert seen["cleaned"] == set()
    assert seen["ping"] and seen["after"] == set(), "and the container starts again with them"


def test_cleanup_after_a_dead_monitor_removes_recorded_l2proxy_entries():
    from lxcframe.plugins.netns.host import cleanup
    from lxcframe.plugins.netns.records import DeviceRecord, NetnsRecord

    def body() -> tuple[set[tuple[str, str]], set[tuple[str, str]], set[str]]:
        run("ip link add lxftup2 type veth peer name lxftup3 && ip link set lxftup2 up")
        run("ip neigh add proxy 192.0.2.20 dev lxftup2 && ip -6 neigh add proxy 2001:db8::20 dev lxftup2 && "
            "ip neigh add proxy 192.0.2.21 dev lxftup2 && ip neigh add proxy 192.0.2.22 dev lxftup2")
        # An l3s ipvlan's l2proxy also routes its address through lo (as the start adds it: proto boot, scope link).
        run("ip route add 192.0.2.22/32 dev lo proto boot scope link && "
            "ip route add 192.0.2.23/32 dev lo proto boot scope link")
        before = proxies()
        index = socket.if_nametoindex("lxftup2")
        # One of the recorded entries is gone already (as after a partly finished undo): not an error.
        cleanup(NetnsRecord(False, None, (
            DeviceRecord(0, "veth", l2proxy_link="lxftup2", l2proxy_index=index,
                         l2proxy=("192.0.2.20", "2001:db8::20", "192.0.2.99")),
            DeviceRecord(1, "ipvlan", l2proxy_link="lxftup2", l2proxy_index=index, l2proxy=("192.0.2.22",),
                         l2proxy_lo=True))))
        return before, proxies(), routes_via("lo")

    before, after, through_lo = private_host(body)
    assert before == {("lxftup2", "192.0.2.20"), ("lxftup2", "2001:db8::20"), ("lxftup2", "192.0.2.21"),
                      ("lxftup2", "192.0.2.22")}
    assert after == {("lxftup2", "192.0.2.21")}, "only the recorded entries go"
    assert through_lo == {"192.0.2.23"}, "and the recorded route through lo"


# --- vlan and ipvlan ---------------------------------------------------------------------------------------


def _started_or_refused(c: Container, supported: bool,
                        inspect: Callable[[Container, int], dict[str, Any]]) -> dict[str, Any]:
    """What ``inspect(c, pid)`` reads of the running container where the kernel makes the device type,
    else the start's error (it must refuse); and the links left in the uplink's namespace after it."""
    seen: dict[str, Any] = {"supported": supported}
    if supported:
        pid = c.start()
        try:
            seen.update(inspect(c, pid))
        finally:
            c.stop(kill=True)
    else:
        with pytest.raises(StageError) as info:
            c.start()
        seen["error"] = str(info.value)
    seen["links"] = links()
    return seen


def test_vlan_device_inside_with_its_id(make_container, lxcpath):
    make_container("nvlan", config=(
        ("lxc.net.0.type", "vlan"), ("lxc.net.0.link", "lxftup4"), ("lxc.net.0.vlan.id", "7"),
        ("lxc.net.0.flags", "up"), ("lxc.net.0.ipv4.address", "192.0.2.30/24"),
    ))

    def body() -> dict[str, Any]:
        with side("lxftup4"):
            return _started_or_refused(
                container(lxcpath, "nvlan"), kernel_makes("link lxftup4 type vlan id 9"),
                lambda c, pid: {"details": run(f"nsenter -t {pid} -n ip -d -j link show eth0"), "ips": c.get_ips()})

    seen = private_host(body)
    if seen["supported"]:
        [details] = json.loads(seen["details"])
        info = details["linkinfo"]
        assert (info["info_kind"], info["info_data"]["id"], info["info_data"]["protocol"]) == ("vlan", 7, "802.1Q")
        assert seen["ips"] == ("192.0.2.30",)
    else:
        # This kernel has no 802.1Q devices: the start says so, naming the request, and unwinds.
        assert ("create vlan eth0 on lxftup4: Operation not supported (Unknown device type: this kernel has no vlan "
                "devices, CONFIG_VLAN_8021Q)") in seen["error"]
    assert seen["links"] == {"lo", "lxftup4"}


@pytest.mark.parametrize("mode, isolation, numbers", [("l3s", "private", (2, 1)), ("l2", "vepa", (0, 2)),
                                                      ("l3", "bridge", (1, 0))])
def test_ipvlan_mode_and_isolation_read_back(make_container, lxcpath, mode, isolation, numbers):
    make_container("nipvl", config=(
        ("lxc.net.0.type", "ipvlan"), ("lxc.net.0.link", "lxftup5"), ("lxc.net.0.ipvlan.mode", mode),
        ("lxc.net.0.ipvlan.isolation", isolation), ("lxc.net.0.flags", "up"),
        ("lxc.net.0.ipv4.address", "192.0.2.40/24"),
    ))

    def body() -> dict[str, Any]:
        from lxcframe.plugins.netns.iproute import Rtnl, ipvlan_kind

        def read_back(_c: Container, pid: int) -> dict[str, Any]:
            ipvlan_kind()
            ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                with Rtnl(ns_fd=ns) as inner:
                    message = inner._ipr.link("get", ifname="eth0")[0]
            finally:
                os.close(ns)
            data = message.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
            return {"data": (data.get("IFLA_IPVLAN_MODE"), data.get("IFLA_IPVLAN_FLAGS"))}

        with side("lxftup5"):
            return _started_or_refused(container(lxcpath, "nipvl"), kernel_makes("link lxftup5 type ipvlan mode l2"),
                                       read_back)

    seen = private_host(body)
    if seen["supported"]:
        assert seen["data"] == numbers
    else:
        assert ("create ipvlan eth0 on lxftup5: Operation not supported (Unknown device type: this kernel has no "
                "ipvlan devices, CONFIG_IPVLAN)") in seen["error"]
    assert seen["links"] == {"lo", "lxftup5"}


def test_ipvlan_request_carries_mode_and_isolation_as_the_kernel_numbers_them():
    """What pyroute2 encodes for an ipvlan (with IFLA_IPVLAN_FLAGS taught to it): IFLA_INFO_DATA holds
    IFLA_IPVLAN_MODE (1) and IFLA_IPVLAN_FLAGS (2) as u16, linux/if_link.h's numbers."""
    import struct

    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    from lxcframe.plugins.netns.iproute import ipvlan_kind

    ipvlan_kind()
    ipvlan_kind()  # twice changes nothing
    msg = ifinfmsg()
    msg["attrs"] = [("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "ipvlan"), ("IFLA_INFO_DATA", {"attrs": [
        ("IFLA_IPVLAN_MODE", 2), ("IFLA_IPVLAN_FLAGS", 1)]})]})]
    msg.encode()
    raw = bytes(msg.data[: msg["header"]["length"]])

    def attributes(data: bytes) -> dict[int, bytes]:
        found, offset = {}, 0
        while offset + 4 <= len(data):
            length, kind = struct.unpack_from("=HH", data, offset)
            found[kind & 0x3FFF] = data[offset + 4 : offset + length]
            offset += (length + 3) & ~3
        return found

    linkinfo = attributes(raw[16 + 16 :])[18]  # nlmsghdr, ifinfomsg; IFLA_LINKINFO = 18
    info = attributes(linkinfo)
    assert info[1] == b"ipvlan\0"  # IFLA_INFO_KIND
    assert attributes(info[2]) == {1: struct.pack("=H", 2), 2: struct.pack("=H", 1)}  # IFLA_INFO_DATA


# --- the requests themselves, against iproute2's -------------------------------------------------------------


def _newlink_requests(command: list[str]) -> list[bytes]:
    """The RTM_NEWLINK requests with NLM_F_CREATE that ``command`` sends, run under strace in a network
    namespace of its own with a veth end ``lxa0`` (ifindex 2) to hang devices on."""
    done = subprocess.run(["unshare", "--net", "sh", "-c", 'ip link add lxa0 type veth peer name lxb0 && exec strace '
                           '-qq -f -e trace=sendmsg,sendto -e write=all "$@"', "sh", *command],
                          capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": os.getcwd()})
    buffers: list[bytearray] = []
    for line in done.stderr.splitlines():
        if line.startswith(("sendmsg(", "sendto(", "[pid")) or line.startswith(" * "):
            buffers.append(bytearray())
        elif line.startswith(" | ") and buffers:
            buffers[-1] += bytes.fromhex(line[3:].split("  ", 1)[1][:48].replace(" ", ""))
    requests = []
    for data in buffers:
        if len(data) >= 16:
            length, kind, flags = struct.unpack_from("=IHH", data)
            if kind == 16 and flags & 0x400:  # RTM_NEWLINK, NLM_F_CREATE
                requests.append(bytes(data[:length]))
    assert requests, done.stderr[-2000:]
    return requests


def _attributes(data: bytes) -> dict[int, bytes]:
    found, offset = {}, 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        found[kind & 0x3FFF] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


def _linkinfo(request: bytes) -> tuple[bytes, bytes, dict[int, bytes]]:
    """IFLA_LINK, IFLA_INFO_KIND and IFLA_INFO_DATA's attributes of a request."""
    top = _attributes(request[32:])  # nlmsghdr, ifinfomsg
    info = _attributes(top[18])  # IFLA_LINKINFO
    kind, data = info[1].rstrip(b"\0"), _attributes(info[2])  # a NUL ends the kind or not: the kernel takes both
    if kind == b"ipvlan":
        # No IFLA_IPVLAN_FLAGS is bridge isolation (0): LXC and lxcframe send the flags only for the others.
        data.setdefault(2, struct.pack("=H", 0))
    return top[5], kind, data  # IFLA_LINK; IFLA_INFO_KIND, IFLA_INFO_DATA


_OURS = ("import os; from lxcframe.plugins.netns.iproute import Rtnl, NetlinkError\n"
         "ns = os.open('/proc/self/ns/net', os.O_RDONLY)\n"
         "with Rtnl() as rt:\n"
         "    try:\n"
         "        rt.{call}\n"
         "    except NetlinkError as err:\n"
         "        print(err)\n")


@pytest.mark.parametrize("ip_args, call", [
    ("type vlan id 7", "create_vlan('eth0', rt.link('lxa0').ifindex, 7, ns)"),
    ("type ipvlan mode l3s private", "create_ipvlan('eth0', rt.link('lxa0').ifindex, 'l3s', 'private', ns)"),
    ("type ipvlan mode l2 vepa", "create_ipvlan('eth0', rt.link('lxa0').ifindex, 'l2', 'vepa', ns)"),
    ("type ipvlan mode l3", "create_ipvlan('eth0', rt.link('lxa0').ifindex, 'l3', 'bridge', ns)"),
])
def test_vlan_and_ipvlan_requests_are_iproute2s(ip_args, call):
    """What the kernel gets for a vlan or an ipvlan is what ``ip link add`` sends for the same device: the
    same lower link, kind and IFLA_INFO_DATA (id; mode and isolation flags), whether or not this kernel
    has such devices."""
    [theirs] = _newlink_requests(["ip", "link", "add", "link", "lxa0", "name", "eth0", *ip_args.split()])
    [ours] = _newlink_requests([sys.executable, "-c", _OURS.format(call=call)])
    assert _linkinfo(ours) == _linkinfo(theirs)
