"""``lxc.net.<N>.*``: each key's validation (through the registry, as a config file is loaded), the
per-device view, the names devices get inside the container, and the checks across keys."""

from __future__ import annotations

import attrs
import pytest

from lxcframe.config.keys import KeyRegistry
from lxcframe.config.model import ContainerConfig, load_text
from lxcframe.errors import ConfigErrors
from lxcframe.plugins.netns import config as net
from lxcframe.plugins.netns.config import Inet4, Inet6, NetDevice

KNOWN = ("type, link, name, hwaddr, mtu, ipv4.address, ipv4.gateway, ipv6.address, ipv6.gateway, veth.pair, "
         "veth.mode, veth.ipv4.route, veth.ipv6.route, macvlan.mode, ipvlan.mode, ipvlan.isolation, vlan.id, l2proxy, "
         "flags, script.up, script.down")


def registry() -> KeyRegistry:
    reg = KeyRegistry()
    for spec in net.config_keys():
        reg.add(attrs.evolve(spec, plugin="netns"))
    return reg


def load(text: str) -> ContainerConfig:
    return load_text(text, registry(), "c.conf")


def refused(text: str) -> str:
    """The one-line error loading ``text`` gives."""
    with pytest.raises(ConfigErrors) as caught:
        load(text)
    return str(caught.value)


def value(key: str, text: str) -> object:
    return load(f"{key} = {text}\n").get(key)


# --- one key at a time -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["empty", "none", "veth", "macvlan", "ipvlan", "vlan", "phys"])
def test_type_accepts_the_supported_types(kind: str) -> None:
    assert value("lxc.net.0.type", kind) == kind


def test_type_refuses_an_unknown_type() -> None:
    assert refused("lxc.net.3.type = Veth\n") == (
        "c.conf:1: lxc.net.3.type = 'Veth': expected one of empty, none, veth, macvlan, ipvlan, vlan, phys")


@pytest.mark.parametrize("key, text, expected", [
    ("vlan.id", "0", 0), ("vlan.id", "4094", 4094), ("l2proxy", "0", False), ("l2proxy", "1", True),
    ("ipvlan.mode", "l3s", "l3s"), ("ipvlan.isolation", "vepa", "vepa"), ("veth.mode", "router", "router"),
])
def test_new_keys_accept(key: str, text: str, expected: object) -> None:
    assert value(f"lxc.net.0.{key}", text) == expected


@pytest.mark.parametrize("line, message", [
    ("vlan.id = 5000", "expected a VLAN id between 0 and 4094"),
    ("vlan.id = 4095", "expected a VLAN id between 0 and 4094"),
    ("vlan.id = -1", "expected a VLAN id between 0 and 4094"),
    ("ipvlan.mode = foo", "expected one of l3, l3s, l2"),
    ("ipvlan.isolation = l2", "expected one of bridge, private, vepa"),
    ("veth.mode = routed", "expected one of bridge, router"),
    ("l2proxy = yes", "expected 0 or 1"),
    ("veth.ipv4.route = 192.0.2.0", "expected an IPv4 NETWORK/PREFIX"),
    ("veth.ipv4.route = 192.0.2.0/33", "'192.0.2.0/33' is not an IPv4 network"),
    ("veth.ipv6.route = 192.0.2.0/24", "'192.0.2.0/24' is not an IPv6 network"),
])
def test_new_keys_refuse_with_file_line_and_key(line: str, message: str) -> None:
    key, _, text = line.partition(" = ")
    assert refused(f"lxc.net.0.type = veth\nlxc.net.0.{line}\n").startswith(
        f"c.conf:2: lxc.net.0.{key} = {text!r}: {message}")


def test_veth_routes_repeat_and_keep_the_network() -> None:
    [device] = net.devices(load("lxc.net.0.type = veth\nlxc.net.0.veth.ipv4.route = 192.0.2.7/24\n"
                                "lxc.net.0.veth.ipv6.route = 2001:db8:1::5/64\n"
                                "lxc.net.0.veth.ipv4.route = 198.51.100.0/25\n"))
    assert device.veth_routes == (Inet4("192.0.2.0", 24, None), Inet4("198.51.100.0", 25, None),
                                   Inet6("2001:db8:1::", 64))


@pytest.mark.parametrize("name", ["eth0", "a", "x" * 15, "br-lan.100", "veth_1-2@x"])
def test_ifname_accepts(name: str) -> None:
    assert net.ifname(name) == name
    assert value("lxc.net.0.link", name) == name
    assert value("lxc.net.0.name", name) == name
    assert value("lxc.net.0.veth.pair", name) == name


@pytest.mark.parametrize("key", ["link", "name", "veth.pair"])
def test_device_name_keys_are_checked_as_interface_names(key: str) -> None:
    assert refused(f"lxc.net.0.{key} = a/b\n") == (
        f"c.conf:1: lxc.net.0.{key} = 'a/b': an interface name cannot be '.' or '..' nor contain '/', ':', '%' "
        "or white space")


def test_ifname_length_limit() -> None:
    with pytest.raises(ValueError) as caught:
        net.ifname("x" * 16)
    assert str(caught.value) == "interface names have at most 15 characters"
    assert refused(f"lxc.net.0.veth.pair = {'v' * 20}\n") == (
        f"c.conf:1: lxc.net.0.veth.pair = {'v' * 20!r}: interface names have at most 15 characters")


@pytest.mark.parametrize("name", [".", "..", "a/b", "a:1", "a b", "a\tb", "a%d", "/", ":"])
def test_ifname_refuses_what_the_kernel_refuses(name: str) -> None:
    with pytest.raises(ValueError) as caught:
        net.ifname(name)
    assert str(caught.value) == (
        "an interface name cannot be '.' or '..' nor contain '/', ':', '%' or white space")


def test_ifname_dots_inside_a_name_are_fine() -> None:
    assert net.ifname("...") == "..."
    assert net.ifname(".a") == ".a"


def test_flags() -> None:
    assert value("lxc.net.0.flags", "up") is True
    assert refused("lxc.net.0.flags = down\n") == "c.conf:1: lxc.net.0.flags = 'down': the only flag is 'up'"
    assert refused("lxc.net.0.flags = UP\n") == "c.conf:1: lxc.net.0.flags = 'UP': the only flag is 'up'"


@pytest.mark.parametrize(("given", "kept"), [
    ("00:16:3e:12:34:56", "00:16:3e:12:34:56"),
    ("00:16:3E:AB:CD:EF", "00:16:3e:ab:cd:ef"),
    ("00:16:3e:xx:xx:xx", "00:16:3e:xx:xx:xx"),
    ("0X:16:3e:XX:xX:x0", "0x:16:3e:xx:xx:x0"),
    ("02:00:00:00:00:00", "02:00:00:00:00:00"),
    ("fe:ff:ff:ff:ff:ff", "fe:ff:ff:ff:ff:ff"),
    ("1e:00:00:00:00:01", "1e:00:00:00:00:01"),
])
def test_hwaddr_accepts(given: str, kept: str) -> None:
    assert net.hwaddr(given) == kept
    assert value("lxc.net.0.hwaddr", given) == kept


@pytest.mark.parametrize(("given", "message"), [
    ("00:16:3e:12:34", "expected a MAC address such as 00:16:3e:12:34:56 ('x' for random digits)"),
    ("00:16:3e:12:34:56:78", "expected a MAC address such as 00:16:3e:12:34:56 ('x' for random digits)"),
    ("00-16-3e-12-34-56", "expected a MAC address such as 00:16:3e:12:34:56 ('x' for random digits)"),
    ("0:16:3e:12:34:56", "expected a MAC address such as 00:16:3e:12:34:56 ('x' for random digits)"),
    ("00:16:3g:12:34:56", "expected a MAC address such as 00:16:3e:12:34:56 ('x' for random digits)"),
    ("x00:16:3e:12:34:56", "expected a MAC address such as 00:16:3e:12:34:56 ('x' for random digits)"),
    ("00:16:3e:12:34:56 ", "expected a MAC address such as 00:16:3e:12:34:56 ('x' for random digits)"),
    ("01:00:5e:00:00:01", "a multicast MAC address cannot name an interface"),
    ("ff:ff:ff:ff:ff:ff", "a multicast MAC address cannot name an interface"),
    ("x3:00:00:00:00:01", "a multicast MAC address cannot name an interface"),
    ("0F:00:00:00:00:01", "a multicast MAC address cannot name an interface"),
    ("00:00:00:00:00:00", "the all-zero MAC address cannot name an interface"),
])
def test_hwaddr_refuses(given: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        net.hwaddr(given)
    assert str(caught.value) == message


@pytest.mark.parametrize(("given", "mtu"), [("68", 68), ("1500", 1500), ("65535", 65535), ("0900", 900)])
def test_mtu_accepts(given: str, mtu: int) -> None:
    assert value("lxc.net.0.mtu", given) == mtu


@pytest.mark.parametrize("given", ["67", "0", "65536", "-1500", "+1500", "1500.0", "mtu", "1e3"])
def test_mtu_refuses(given: str) -> None:
    assert refused(f"lxc.net.0.mtu = {given}\n") == (
        f"c.conf:1: lxc.net.0.mtu = {given!r}: expected an MTU between 68 and 65535")


@pytest.mark.parametrize(("given", "parsed"), [
    ("192.0.2.10/24", Inet4("192.0.2.10", 24, "192.0.2.255")),
    ("192.0.2.10/30", Inet4("192.0.2.10", 30, "192.0.2.11")),
    ("192.0.2.10/31", Inet4("192.0.2.10", 31, None)),
    ("192.0.2.10/32", Inet4("192.0.2.10", 32, None)),
    ("198.51.100.7/0", Inet4("198.51.100.7", 0, "255.255.255.255")),
    ("203.0.113.5/24 203.0.113.127", Inet4("203.0.113.5", 24, "203.0.113.127")),
    ("203.0.113.5/32 203.0.113.255", Inet4("203.0.113.5", 32, "203.0.113.255")),
    ("  203.0.113.5/24\t ", Inet4("203.0.113.5", 24, "203.0.113.255")),
    # Without a prefix: the class A/B/C mask of the address, as LXC.
    ("192.0.2.10", Inet4("192.0.2.10", 24, "192.0.2.255")),
    ("223.255.1.1", Inet4("223.255.1.1", 24, "223.255.1.255")),
    ("192.0.2.10/", Inet4("192.0.2.10", 24, "192.0.2.255")),
    ("191.255.1.1", Inet4("191.255.1.1", 16, "191.255.255.255")),
    ("128.0.1.1", Inet4("128.0.1.1", 16, "128.0.255.255")),
    ("126.1.2.3", Inet4("126.1.2.3", 8, "126.255.255.255")),
    ("1.2.3.4", Inet4("1.2.3.4", 8, "1.255.255.255")),
])
def test_inet4_accepts(given: str, parsed: Inet4) -> None:
    assert net.inet4(given) == parsed


def test_inet4_network() -> None:
    assert str(Inet4("192.0.2.10", 26, None).network) == "192.0.2.0/26"


@pytest.mark.parametrize(("given", "message"), [
    ("", "expected ADDRESS/PREFIX [BROADCAST]"),
    ("192.0.2.1/24 192.0.2.255 extra", "expected ADDRESS/PREFIX [BROADCAST]"),
    ("192.0.2/24", "'192.0.2' is not an IPv4 address"),
    ("2001:db8::1/64", "'2001:db8::1' is not an IPv4 address"),
    ("192.0.2.1/33", "prefix length '33' is not between 0 and 32"),
    ("192.0.2.1/-1", "prefix length '-1' is not between 0 and 32"),
    ("192.0.2.1/24/8", "prefix length '24/8' is not between 0 and 32"),
    ("192.0.2.1/a", "prefix length 'a' is not between 0 and 32"),
    ("0.0.0.0/0", "an unspecified, multicast or loopback address cannot be a container's address"),
    ("224.0.0.1/4", "an unspecified, multicast or loopback address cannot be a container's address"),
    ("127.0.0.2/8", "an unspecified, multicast or loopback address cannot be a container's address"),
    ("192.0.2.1/24 192.0.2", "broadcast '192.0.2' is not an IPv4 address"),
])
def test_inet4_refuses(given: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        net.inet4(given)
    assert str(caught.value) == message


@pytest.mark.parametrize(("given", "parsed"), [
    ("2001:db8::1/64", Inet6("2001:db8::1", 64)),
    ("2001:DB8:0::1", Inet6("2001:db8::1", 64)),
    (" 2001:db8::1/128 ", Inet6("2001:db8::1", 128)),
    ("2001:db8::1/0", Inet6("2001:db8::1", 0)),
    ("2001:db8::1/48", Inet6("2001:db8::1", 48)),
    ("fe80::1/10", Inet6("fe80::1", 10)),
])
def test_inet6_accepts(given: str, parsed: Inet6) -> None:
    assert net.inet6(given) == parsed


def test_inet6_network() -> None:
    assert str(Inet6("2001:db8::1:1", 112).network) == "2001:db8::1:0/112"


@pytest.mark.parametrize(("given", "message"), [
    ("2001:db8::1/129", "prefix length '129' is not between 0 and 128"),
    ("2001:db8::1/x", "prefix length 'x' is not between 0 and 128"),
    ("2001:db8::1/64 2001:db8::ff", "prefix length '64 2001:db8::ff' is not between 0 and 128"),
    ("192.0.2.1/24", "'192.0.2.1' is not an IPv6 address"),
    ("2001:db8:::1", "'2001:db8:::1' is not an IPv6 address"),
    ("::/0", "an unspecified, multicast or loopback address cannot be a container's address"),
    ("ff02::1", "an unspecified, multicast or loopback address cannot be a container's address"),
    ("::1/128", "an unspecified, multicast or loopback address cannot be a container's address"),
])
def test_inet6_refuses(given: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        net.inet6(given)
    assert str(caught.value) == message


def test_addresses_repeat_and_an_empty_value_clears_them() -> None:
    config = load("lxc.net.0.ipv4.address = 192.0.2.1/24\nlxc.net.0.ipv4.address = 198.51.100.1/25\n"
                  "lxc.net.0.ipv6.address = 2001:db8::1\nlxc.net.0.ipv6.address =\n"
                  "lxc.net.0.ipv6.address = 2001:db8::2/80\n")
    assert config.get_all("lxc.net.0.ipv4.address") == (Inet4("192.0.2.1", 24, "192.0.2.255"),
                                                         Inet4("198.51.100.1", 25, "198.51.100.127"))
    assert config.get_all("lxc.net.0.ipv6.address") == (Inet6("2001:db8::2", 80),)


@pytest.mark.parametrize(("version", "given", "kept"), [
    (4, "auto", "auto"), (4, "dev", "dev"), (4, "192.0.2.1", "192.0.2.1"),
    (6, "auto", "auto"), (6, "dev", "dev"), (6, "2001:DB8::0:1", "2001:db8::1"), (6, "fe80::1", "fe80::1"),
])
def test_gateway_accepts(version: int, given: str, kept: str) -> None:
    assert value(f"lxc.net.0.ipv{version}.gateway", given) == kept


@pytest.mark.parametrize(("version", "given", "message"), [
    (4, "2001:db8::1", "expected an IPv4 address, 'auto' (the link's address) or 'dev' (a device route)"),
    (4, "Auto", "expected an IPv4 address, 'auto' (the link's address) or 'dev' (a device route)"),
    (6, "192.0.2.1", "expected an IPv6 address, 'auto' (the link's address) or 'dev' (a device route)"),
    (4, "0.0.0.0", "a gateway cannot be an unspecified or multicast address"),
    (4, "239.1.1.1", "a gateway cannot be an unspecified or multicast address"),
    (6, "::", "a gateway cannot be an unspecified or multicast address"),
    (6, "ff02::2", "a gateway cannot be an unspecified or multicast address"),
])
def test_gateway_refuses(version: int, given: str, message: str) -> None:
    key = f"lxc.net.0.ipv{version}.gateway"
    assert refused(f"{key} = {given}\n") == f"c.conf:1: {key} = {given!r}: {message}"


@pytest.mark.parametrize("mode", ["private", "vepa", "bridge", "passthru"])
def test_macvlan_mode_accepts(mode: str) -> None:
    assert value("lxc.net.0.macvlan.mode", mode) == mode


def test_macvlan_mode_refuses() -> None:
    assert refused("lxc.net.0.macvlan.mode = source\n") == (
        "c.conf:1: lxc.net.0.macvlan.mode = 'source': expected one of private, vepa, bridge, passthru")


def test_scripts() -> None:
    assert value("lxc.net.0.script.up", "/usr/local/bin/up --fast") == "/usr/local/bin/up --fast"
    assert value("lxc.net.0.script.down", "/bin/down") == "/bin/down"
    for key in ("script.up", "script.down"):
        assert refused(f"lxc.net.0.{key} = '  '\n") == f"c.conf:1: lxc.net.0.{key} = '  ': expected a script"


def test_lxc_net_and_an_entry_only_take_an_empty_value() -> None:
    message = "only an empty value is allowed here: it removes the network entries below this key"
    assert refused("lxc.net = 1\n") == f"c.conf:1: lxc.net = '1': {message}"
    assert refused("lxc.net.2 = veth\n") == f"c.conf:1: lxc.net.2 = 'veth': {message}"
    config = load("lxc.net.0.type = veth\nlxc.net.1.type = empty\nlxc.net.1 =\nlxc.net.2.type = none\n")
    assert [d.index for d in net.devices(config)] == [0, 2]
    config = load("lxc.net.0.type = veth\nlxc.net.1.type = empty\nlxc.net =\nlxc.net.2.type = phys\n")
    assert [(d.index, d.type) for d in net.devices(config)] == [(2, "phys")]


@pytest.mark.parametrize("key", net.UNSUPPORTED_KEYS)
def test_lxc_keys_that_are_not_supported_say_so(key: str) -> None:
    assert refused(f"lxc.net.0.{key} = 1\n") == (
        f"c.conf:1: lxc.net.0.{key} = '1': this LXC network key is not supported by lxcframe")


@pytest.mark.parametrize("key", ["lxc.net.0.bridge", "lxc.net.00.type", "lxc.net.x.type", "lxc.net.0.ipv4",
                                 "lxc.net.type", "lxc.net.0.veth.pairs"])
def test_any_other_network_key_is_refused_with_the_known_ones(key: str) -> None:
    assert refused(f"{key} = v\n") == (
        f"c.conf:1: {key} = 'v': not a network key (lxc.net.<N>.KEY with N a decimal index and KEY one of: "
        f"{KNOWN})")


def test_config_keys_are_documented_and_only_addresses_and_routes_repeat() -> None:
    specs = net.config_keys()
    assert len({spec.name for spec in specs}) == len(specs)
    assert all(spec.doc for spec in specs)
    assert sorted(spec.name for spec in specs if spec.multi) == ["lxc.net.<N>.ipv4.address",
                                                                  "lxc.net.<N>.ipv6.address",
                                                                  "lxc.net.<N>.veth.ipv4.route",
                                                                  "lxc.net.<N>.veth.ipv6.route"]
    names = {spec.name for spec in specs}
    for key in ("type", "link", "flags", "name", "hwaddr", "mtu", "ipv4.gateway", "ipv6.gateway", "veth.pair",
                "macvlan.mode", "script.up", "script.down"):
        assert f"lxc.net.<N>.{key}" in names
    assert {"lxc.net", "lxc.net.<N>", "lxc.net.*"} <= names


def test_every_error_of_a_file_is_reported_together() -> None:
    with pytest.raises(ConfigErrors) as caught:
        load("lxc.net.0.type = veth\nlxc.net.0.mtu = 20\nlxc.net.0.hwaddr = 01:00:00:00:00:00\n")
    assert [(e.line, e.key) for e in caught.value.errors] == [(2, "lxc.net.0.mtu"), (3, "lxc.net.0.hwaddr")]


# --- devices ---------------------------------------------------------------------------------------


def test_devices_defaults() -> None:
    assert net.devices(load("lxc.net.0.type = veth\n")) == (NetDevice(index=0, type="veth"),)
    device = NetDevice(index=4, type="empty")
    assert (device.link, device.up, device.name, device.hwaddr, device.mtu, device.ipv4, device.ipv4_gateway,
            device.ipv6, device.ipv6_gateway, device.veth_pair, device.macvlan_mode, device.script_up,
            device.script_down) == (None, False, None, None, None, (), None, (), None, None, "private", None, None)


def test_devices_read_every_key_in_index_order() -> None:
    config = load(
        "lxc.net.10.type = macvlan\n"
        "lxc.net.10.link = eno1\n"
        "lxc.net.10.macvlan.mode = bridge\n"
        "lxc.net.2.type = veth\n"
        "lxc.net.2.link = br0\n"
        "lxc.net.2.flags = up\n"
        "lxc.net.2.name = lan\n"
        "lxc.net.2.hwaddr = 00:16:3E:00:00:01\n"
        "lxc.net.2.mtu = 1400\n"
        "lxc.net.2.ipv4.address = 192.0.2.2/24\n"
        "lxc.net.2.ipv4.address = 198.51.100.2/24\n"
        "lxc.net.2.ipv4.gateway = 192.0.2.1\n"
        "lxc.net.2.ipv6.address = 2001:db8::2/64\n"
        "lxc.net.2.ipv6.gateway = 2001:db8::1\n"
        "lxc.net.2.veth.pair = vhost2\n"
        "lxc.net.2.script.up = /bin/up\n"
        "lxc.net.2.script.down = /bin/down\n"
        "lxc.net.5.name = untyped\n"
    )
    assert net.devices(config) == (
        NetDevice(index=2, type="veth", link="br0", up=True, name="lan", hwaddr="00:16:3e:00:00:01", mtu=1400,
                  ipv4=(Inet4("192.0.2.2", 24, "192.0.2.255"), Inet4("198.51.100.2", 24, "198.51.100.255")),
                  ipv4_gateway="192.0.2.1", ipv6=(Inet6("2001:db8::2", 64),), ipv6_gateway="2001:db8::1",
                  veth_pair="vhost2", script_up="/bin/up", script_down="/bin/down"),
        NetDevice(index=10, type="macvlan", link="eno1", macvlan_mode="bridge"),
    )


def test_shares_host_netns() -> None:
    assert net.shares_host_netns(load("lxc.net.0.type = none\n")) is True
    assert net.shares_host_netns(load("lxc.net.0.type = veth\nlxc.net.1.type = none\n")) is True
    assert net.shares_host_netns(load("lxc.net.0.type = empty\n")) is False
    assert net.shares_host_netns(load("")) is False
    assert net.shares_host_netns(load("lxc.net.0.type = none\nlxc.net.0.type =\n")) is False


# --- names inside the container --------------------------------------------------------------------


def test_container_names() -> None:
    devs = net.devices(load(
        "lxc.net.0.type = veth\n"
        "lxc.net.1.type = veth\nlxc.net.1.name = eth0\n"
        "lxc.net.2.type = phys\nlxc.net.2.link = eno2\n"
        "lxc.net.3.type = macvlan\nlxc.net.3.link = eno1\n"
        "lxc.net.4.type = empty\n"
        "lxc.net.5.type = none\n"
        "lxc.net.6.type = phys\nlxc.net.6.link = eno3\nlxc.net.6.name = wan\n"
        "lxc.net.7.type = veth\nlxc.net.7.name = eth2\n"
        "lxc.net.8.type = veth\n"
        "lxc.net.9.type = phys\n"
    ))
    assert net.container_names(devs) == {0: "eth1", 1: "eth0", 2: "eno2", 3: "eth3", 6: "wan", 7: "eth2",
                                         8: "eth4"}


def test_container_names_count_from_eth0() -> None:
    devs = net.devices(load("lxc.net.0.type = macvlan\nlxc.net.0.link = eno1\nlxc.net.1.type = veth\n"))
    assert net.container_names(devs) == {0: "eth0", 1: "eth1"}
    assert net.container_names(()) == {}


# --- problems --------------------------------------------------------------------------------------


def test_a_sound_config_has_no_problem() -> None:
    config = load(
        "lxc.net.0.type = veth\nlxc.net.0.link = br0\nlxc.net.0.flags = up\n"
        "lxc.net.0.ipv4.address = 192.0.2.2/24\nlxc.net.0.ipv4.gateway = 192.0.2.1\n"
        "lxc.net.0.ipv6.address = 2001:db8::2/64\nlxc.net.0.ipv6.gateway = 2001:db8::1\n"
        "lxc.net.0.mtu = 1280\nlxc.net.0.veth.pair = vh0\n"
        "lxc.net.1.type = macvlan\nlxc.net.1.link = eno1\nlxc.net.1.macvlan.mode = vepa\n"
        "lxc.net.1.flags = up\nlxc.net.1.ipv4.gateway = auto\nlxc.net.1.ipv6.gateway = dev\n"
        "lxc.net.2.type = phys\nlxc.net.2.link = eno2\nlxc.net.2.mtu = 68\n"
        "lxc.net.3.type = empty\nlxc.net.3.flags = up\nlxc.net.3.script.up = /bin/up\n"
        "lxc.net.4.type = veth\nlxc.net.4.flags = up\nlxc.net.4.ipv6.gateway = fe80::1\n"
    )
    assert net.problems(config) == []
    assert net.problems(load("")) == []
    assert net.problems(load("lxc.net.0.type = none\nlxc.net.0.flags = up\n")) == []


def test_an_entry_without_a_type() -> None:
    config = load("lxc.net.0.type = veth\nlxc.net.1.name = eth1\nlxc.net.1.link = br0\n")
    assert net.problems(config) == ["c.conf:3: lxc.net.1.link: network entry 1 has no lxc.net.1.type"]


@pytest.mark.parametrize("kind", ["empty", "none"])
def test_types_without_a_device_refuse_device_keys(kind: str) -> None:
    config = load(f"lxc.net.0.type = {kind}\nlxc.net.0.link = br0\nlxc.net.0.flags = up\n"
                  "lxc.net.0.ipv6.address = 2001:db8::1\nlxc.net.0.script.down = /bin/down\n")
    expected = [f"c.conf:{line}: lxc.net.0.{key}: a network of type {kind} has no device to apply this to"
                for line, key in ((2, "link"), (4, "ipv6.address"))]
    if kind == "none":
        expected.append("c.conf:5: lxc.net.0.script.down: a network of type none has no device to apply this to")
    assert net.problems(config) == expected


def test_none_refuses_every_device_key() -> None:
    keys = {"link": "br0", "name": "n", "hwaddr": "00:16:3e:00:00:01", "mtu": "1500",
            "ipv4.address": "192.0.2.1/24", "ipv4.gateway": "dev", "ipv6.address": "2001:db8::1",
            "ipv6.gateway": "dev", "veth.pair": "vp", "macvlan.mode": "vepa", "script.up": "/bin/up"}
    config = load("lxc.net.0.type = none\n" + "".join(f"lxc.net.0.{k} = {v}\n" for k, v in keys.items()))
    assert net.problems(config) == [
        f"c.conf:{line}: lxc.net.0.{key}: a network of type none has no device to apply this to"
        for line, key in enumerate(keys, start=2)
    ]


def test_keys_of_another_type() -> None:
    config = load("lxc.net.0.type = macvlan\nlxc.net.0.link = eno1\nlxc.net.0.veth.pair = vp0\n"
                  "lxc.net.1.type = veth\nlxc.net.1.macvlan.mode = bridge\n"
                  "lxc.net.2.type = phys\nlxc.net.2.link = eno2\nlxc.net.2.veth.pair = vp2\n"
                  "lxc.net.2.macvlan.mode = private\n")
    assert net.problems(config) == [
        "c.conf:3: lxc.net.0.veth.pair: only applies to type veth, not macvlan",
        "c.conf:5: lxc.net.1.macvlan.mode: only applies to type macvlan, not veth",
        "c.conf:8: lxc.net.2.veth.pair: only applies to type veth, not phys",
        "c.conf:9: lxc.net.2.macvlan.mode: only applies to type macvlan, not phys",
    ]


def test_new_keys_of_another_type_and_l2proxy_needs() -> None:
    config = load("lxc.net.0.type = macvlan\nlxc.net.0.link = eno1\nlxc.net.0.vlan.id = 3\n"
                  "lxc.net.1.type = veth\nlxc.net.1.ipvlan.mode = l2\nlxc.net.1.l2proxy = 1\n"
                  "lxc.net.2.type = ipvlan\nlxc.net.2.link = eno1\nlxc.net.2.l2proxy = 1\n"
                  "lxc.net.3.type = phys\nlxc.net.3.link = eno2\nlxc.net.3.l2proxy = 1\nlxc.net.3.veth.mode = router\n")
    assert net.problems(config) == [
        "c.conf:3: lxc.net.0.vlan.id: only applies to type vlan, not macvlan",
        "c.conf:5: lxc.net.1.ipvlan.mode: only applies to type ipvlan, not veth",
        "c.conf:6: lxc.net.1.l2proxy: the proxy entries go on lxc.net.1.link, which is not set",
        "c.conf:9: lxc.net.2.l2proxy: an ipvlan needs lxc.net.2.ipvlan.mode = l3s for l2proxy",
        "c.conf:13: lxc.net.3.veth.mode: only applies to type veth, not phys",
        "c.conf:12: lxc.net.3.l2proxy: only applies to type veth or macvlan or ipvlan or vlan, not phys",
    ]


def test_a_router_takes_a_gateway_outside_its_networks() -> None:
    text = ("lxc.net.0.type = veth\nlxc.net.0.flags = up\nlxc.net.0.ipv4.address = 198.51.100.10/32\n"
            "lxc.net.0.ipv4.gateway = 203.0.113.1\n")
    assert net.problems(load(text + "lxc.net.0.veth.mode = router\n")) == []
    assert net.problems(load(text)) == [
        "c.conf:4: lxc.net.0.ipv4.gateway: 203.0.113.1 is outside the networks of this device's addresses "
        "(198.51.100.10/32)"]


@pytest.mark.parametrize("kind", ["macvlan", "ipvlan", "vlan", "phys"])
def test_macvlan_and_phys_need_a_link(kind: str) -> None:
    config = load(f"lxc.net.0.type = veth\nlxc.net.1.type = {kind}\nlxc.net.1.name = x\n")
    assert net.problems(config) == [
        f"c.conf:2: lxc.net.1.type: a {kind} network needs lxc.net.1.link (the host device it uses)"]


def test_ipv6_needs_an_mtu_of_1280() -> None:
    config = load("lxc.net.0.type = veth\nlxc.net.0.mtu = 1279\nlxc.net.0.ipv6.address = 2001:db8::1\n"
                  "lxc.net.1.type = veth\nlxc.net.1.mtu = 1279\nlxc.net.1.ipv4.address = 192.0.2.1/24\n"
                  "lxc.net.2.type = veth\nlxc.net.2.mtu = 1280\nlxc.net.2.ipv6.address = 2001:db8::2\n")
    assert net.problems(config) == [
        "c.conf:2: lxc.net.0.mtu: IPv6 needs an MTU of at least 1280, and this device has IPv6 addresses"]


@pytest.mark.parametrize("version", [4, 6])
def test_a_gateway_needs_the_device_up(version: int) -> None:
    address = "192.0.2.1/24" if version == 4 else "2001:db8::2/64"
    gateway = "192.0.2.254" if version == 4 else "2001:db8::1"
    config = load(f"lxc.net.0.type = veth\nlxc.net.0.ipv{version}.address = {address}\n"
                  f"lxc.net.0.ipv{version}.gateway = {gateway}\n")
    assert net.problems(config) == [
        f"c.conf:3: lxc.net.0.ipv{version}.gateway: a gateway needs the device up (lxc.net.0.flags = up)"]


def test_auto_gateway_needs_a_link() -> None:
    config = load("lxc.net.0.type = veth\nlxc.net.0.flags = up\nlxc.net.0.ipv4.gateway = auto\n"
                  "lxc.net.0.ipv6.gateway = auto\n")
    assert net.problems(config) == [
        "c.conf:3: lxc.net.0.ipv4.gateway: 'auto' takes the gateway from the link's address, and "
        "lxc.net.0.link is not set",
        "c.conf:4: lxc.net.0.ipv6.gateway: 'auto' takes the gateway from the link's address, and "
        "lxc.net.0.link is not set",
    ]
    # 'dev' needs neither a link nor an address, and the device must still be up.
    config = load("lxc.net.0.type = veth\nlxc.net.0.ipv4.gateway = dev\n")
    assert net.problems(config) == [
        "c.conf:2: lxc.net.0.ipv4.gateway: a gateway needs the device up (lxc.net.0.flags = up)"]


def test_a_gateway_address_needs_an_address_of_its_family() -> None:
    config = load("lxc.net.0.type = veth\nlxc.net.0.flags = up\nlxc.net.0.ipv6.address = 2001:db8::2\n"
                  "lxc.net.0.ipv4.gateway = 192.0.2.1\n"
                  "lxc.net.1.type = veth\nlxc.net.1.flags = up\nlxc.net.1.ipv4.address = 192.0.2.2/24\n"
                  "lxc.net.1.ipv6.gateway = 2001:db8::1\n")
    assert net.problems(config) == [
        "c.conf:4: lxc.net.0.ipv4.gateway: a gateway needs an IPv4 address on the device (lxc.net.0.ipv4.address)",
        "c.conf:8: lxc.net.1.ipv6.gateway: a gateway needs an IPv6 address on the device (lxc.net.1.ipv6.address)",
    ]


def test_a_gateway_outside_every_network() -> None:
    config = load("lxc.net.0.type = veth\nlxc.net.0.flags = up\n"
                  "lxc.net.0.ipv4.address = 192.0.2.2/25\nlxc.net.0.ipv4.address = 198.51.100.2/24\n"
                  "lxc.net.0.ipv4.gateway = 192.0.2.129\n"
                  "lxc.net.0.ipv6.address = 2001:db8::2/64\nlxc.net.0.ipv6.gateway = 2001:db8:1::1\n")
    assert net.problems(config) == [
        "c.conf:5: lxc.net.0.ipv4.gateway: 192.0.2.129 is outside the networks of this device's addresses "
        "(192.0.2.0/25, 198.51.100.0/24)",
        "c.conf:7: lxc.net.0.ipv6.gateway: 2001:db8:1::1 is outside the networks of this device's addresses "
        "(2001:db8::/64)",
    ]
    # In the second address's network: fine.
    config = load("lxc.net.0.type = veth\nlxc.net.0.flags = up\n"
                  "lxc.net.0.ipv4.address = 192.0.2.2/25\nlxc.net.0.ipv4.address = 198.51.100.2/24\n"
                  "lxc.net.0.ipv4.gateway = 198.51.100.1\n")
    assert net.problems(config) == []


def test_a_link_local_ipv6_gateway_needs_no_address_but_an_ipv4_one_does() -> None:
    config = load("lxc.net.0.type = veth\nlxc.net.0.flags = up\nlxc.net.0.ipv6.gateway = fe80::1\n"
                  "lxc.net.0.ipv4.gateway = 169.254.0.1\n")
    assert net.problems(config) == [
        "c.conf:4: lxc.net.0.ipv4.gateway: a gateway needs an IPv4 address on the device (lxc.net.0.ipv4.address)"]


def test_none_cannot_be_given_twice() -> None:
    config = load("lxc.net.0.type = none\nlxc.net.3.type = none\nlxc.net.5.type = none\n")
    assert net.problems(config) == [
        "c.conf:2: lxc.net.3.type: 'none' is given twice (lxc.net.0 already shares the host's network namespace)"]


def test_none_given_twice_is_reported_once() -> None:
    config = load("lxc.net.1.type = none\nlxc.net.2.type = none\n")
    assert net.problems(config) == [
        "c.conf:2: lxc.net.2.type: 'none' is given twice (lxc.net.1 already shares the host's network namespace)"]


def test_none_cannot_be_combined() -> None:
    config = load("lxc.net.0.type = empty\nlxc.net.1.type = none\n")
    assert net.problems(config) == [
        "c.conf:2: lxc.net.1.type: 'none' shares the host's network namespace and cannot be combined with other "
        "network entries"]


def test_names_inside_the_container_clash() -> None:
    config = load("lxc.net.0.type = veth\nlxc.net.0.name = eth1\n"
                  "lxc.net.1.type = veth\nlxc.net.1.name = eth1\n"
                  "lxc.net.2.type = phys\nlxc.net.2.link = eth1\n"
                  "lxc.net.3.type = veth\n")
    assert net.problems(config) == [
        "c.conf:4: lxc.net.1.name: 'eth1' is already the name of lxc.net.0 inside the container; "
        "set lxc.net.1.name",
        "c.conf:5: lxc.net.2.type: 'eth1' is already the name of lxc.net.0 inside the container; "
        "set lxc.net.2.name",
    ]


def test_devices_without_a_name_do_not_stop_the_clash_check() -> None:
    config = load("lxc.net.0.type = empty\nlxc.net.1.type = veth\nlxc.net.1.name = x\n"
                  "lxc.net.2.type = veth\nlxc.net.2.name = x\n")
    assert net.problems(config) == [
        "c.conf:5: lxc.net.2.name: 'x' is already the name of lxc.net.1 inside the container; set lxc.net.2.name"]


def test_host_devices_used_twice() -> None:
    config = load("lxc.net.0.type = veth\nlxc.net.0.veth.pair = vp\n"
                  "lxc.net.1.type = veth\nlxc.net.1.veth.pair = vp\n"
                  "lxc.net.2.type = phys\nlxc.net.2.link = eno1\nlxc.net.2.name = a\n"
                  "lxc.net.3.type = phys\nlxc.net.3.link = eno1\nlxc.net.3.name = b\n"
                  "lxc.net.4.type = macvlan\nlxc.net.4.link = eno1\n"
                  "lxc.net.5.type = veth\nlxc.net.5.link = br0\n"
                  "lxc.net.6.type = veth\nlxc.net.6.link = br0\n")
    assert net.problems(config) == [
        "c.conf:4: lxc.net.1.veth.pair: host device 'vp' is already used by lxc.net.0",
        "c.conf:9: lxc.net.3.link: host device 'eno1' is already used by lxc.net.2",
    ]


def test_a_veth_pair_named_as_a_phys_device() -> None:
    config = load("lxc.net.0.type = phys\nlxc.net.0.link = dev0\nlxc.net.0.name = a\n"
                  "lxc.net.1.type = veth\nlxc.net.1.veth.pair = dev0\n")
    assert net.problems(config) == ["c.conf:5: lxc.net.1.veth.pair: host device 'dev0' is already used by lxc.net.0"]
