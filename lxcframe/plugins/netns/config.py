"""``lxc.net.<N>.*``: the keys, their validators, the per-device view of a config, and cross-key checks.

Values are validated one line at a time by the registry (so a bad line is reported with its file and
line); what needs several keys at once (a macvlan without a link, a gateway outside every address's
network) is checked by :func:`problems`, still naming the line at fault.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable

import attrs

from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig

TYPES = ("empty", "none", "veth", "macvlan", "ipvlan", "vlan", "phys")
MACVLAN_MODES = ("private", "vepa", "bridge", "passthru")
IPVLAN_MODES = ("l3", "l3s", "l2")
IPVLAN_ISOLATIONS = ("bridge", "private", "vepa")
VETH_MODES = ("bridge", "router")
#: The highest 802.1Q VLAN id a vlan device takes (4095 is reserved).
VLAN_ID_MAX = 4094
#: LXC 5.0 keys of ``lxc.net.<N>`` this plugin does not implement.
UNSUPPORTED_KEYS = ("veth.vlan.id", "veth.vlan.tagged.id", "veth.n_rxqueues", "veth.n_txqueues")
IFNAMSIZ = 16
#: Types whose device hangs off a host link that stays on the host (l2proxy entries can go on it).
LINKED_TYPES = ("veth", "macvlan", "ipvlan", "vlan")

# Keys that only make sense for some types (the rest apply to every type that has a device).
_ONLY_FOR = {"veth.pair": ("veth",), "macvlan.mode": ("macvlan",), "ipvlan.mode": ("ipvlan",),
             "ipvlan.isolation": ("ipvlan",), "vlan.id": ("vlan",), "veth.mode": ("veth",),
             "veth.ipv4.route": ("veth",), "veth.ipv6.route": ("veth",), "l2proxy": LINKED_TYPES}
_DEVICE_KEYS = ("link", "name", "hwaddr", "mtu", "ipv4.address", "ipv4.gateway", "ipv6.address",
                "ipv6.gateway", "veth.pair", "veth.mode", "veth.ipv4.route", "veth.ipv6.route", "macvlan.mode",
                "ipvlan.mode", "ipvlan.isolation", "vlan.id", "l2proxy", "flags")


@attrs.frozen
class Inet4:
    address: str
    prefixlen: int
    broadcast: str | None

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"{self.address}/{self.prefixlen}", strict=False)


@attrs.frozen
class Inet6:
    address: str
    prefixlen: int

    @property
    def network(self) -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network(f"{self.address}/{self.prefixlen}", strict=False)


@attrs.frozen
class NetDevice:
    """One ``lxc.net.<N>`` entry, as configured (names the host picks are not here)."""

    index: int
    type: str
    link: str | None = None
    up: bool = False
    name: str | None = None
    hwaddr: str | None = None
    mtu: int | None = None
    ipv4: tuple[Inet4, ...] = ()
    ipv4_gateway: str | None = None
    ipv6: tuple[Inet6, ...] = ()
    ipv6_gateway: str | None = None
    veth_pair: str | None = None
    macvlan_mode: str = "private"  # LXC's default
    ipvlan_mode: str = "l3"  # LXC's default
    ipvlan_isolation: str = "bridge"  # LXC's default
    vlan_id: int = 0  # LXC's default when vlan.id is not set
    veth_mode: str = "bridge"
    #: Routes on the host to these networks through a veth's host end (``veth.ipv4.route``/``ipv6.route``).
    veth_routes: tuple[Inet4 | Inet6, ...] = ()
    #: Neighbour proxy entries on ``link`` for the device's addresses.
    l2proxy: bool = False
    script_up: str | None = None
    script_down: str | None = None


@attrs.frozen
class NetPart:
    """The container's ``lxc.net.<N>`` devices, parsed once by the caller, in index order."""

    devices: tuple[NetDevice, ...]


# --- validators ------------------------------------------------------------------------------------


def _net_type(value: str) -> str:
    if value not in TYPES:
        raise ValueError(f"expected one of {', '.join(TYPES)}")
    return value


def ifname(value: str) -> str:
    """A network device name as the kernel accepts it (dev_valid_name)."""
    if len(value) >= IFNAMSIZ:
        raise ValueError(f"interface names have at most {IFNAMSIZ - 1} characters")
    if value in (".", "..") or re.search(r"[/:\s%]", value):
        raise ValueError("an interface name cannot be '.' or '..' nor contain '/', ':', '%' or white space")
    return value


def _flags(value: str) -> bool:
    if value != "up":
        raise ValueError("the only flag is 'up'")
    return True


def hwaddr(value: str) -> str:
    """``aa:bb:cc:dd:ee:ff``; an ``x`` stands for a random hex digit, drawn at each start (as LXC)."""
    text = value.lower()
    if not re.fullmatch(r"[0-9a-fx]{2}(:[0-9a-fx]{2}){5}", text):
        raise ValueError("expected a MAC address such as 00:16:3e:12:34:56 ('x' for random digits)")
    if text[1] != "x" and int(text[1], 16) & 1:
        raise ValueError("a multicast MAC address cannot name an interface")
    if text == "00:00:00:00:00:00":
        raise ValueError("the all-zero MAC address cannot name an interface")
    return text


def _mtu(value: str) -> int:
    if not value.isdigit() or not 68 <= int(value) <= 65535:
        raise ValueError("expected an MTU between 68 and 65535")
    return int(value)


def _classful_prefix(address: ipaddress.IPv4Address) -> int:
    # LXC's default for an address without /prefix: the old class A/B/C mask.
    first = int(address) >> 24
    return 8 if first < 128 else 16 if first < 192 else 24


def inet4(value: str) -> Inet4:
    """``ADDRESS[/PREFIX] [BROADCAST]``, as LXC; the broadcast defaults to the network's."""
    words = value.split()
    if not 1 <= len(words) <= 2:
        raise ValueError("expected ADDRESS/PREFIX [BROADCAST]")
    text, _, prefix = words[0].partition("/")
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 address") from None
    if prefix and (not prefix.isdigit() or int(prefix) > 32):
        raise ValueError(f"prefix length {prefix!r} is not between 0 and 32")
    if address.is_unspecified or address.is_multicast or address.is_loopback:
        raise ValueError("an unspecified, multicast or loopback address cannot be a container's address")
    length = int(prefix) if prefix else _classful_prefix(address)
    if len(words) == 2:
        try:
            broadcast: str | None = str(ipaddress.IPv4Address(words[1]))
        except ValueError:
            raise ValueError(f"broadcast {words[1]!r} is not an IPv4 address") from None
    elif length < 31:
        broadcast = str(ipaddress.IPv4Network(f"{address}/{length}", strict=False).broadcast_address)
    else:
        broadcast = None  # /31 and /32 have no broadcast address
    return Inet4(str(address), length, broadcast)


def inet6(value: str) -> Inet6:
    """``ADDRESS[/PREFIX]`` (prefix 64 by default, as LXC)."""
    text, _, prefix = value.strip().partition("/")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv6 address") from None
    if prefix and (not prefix.isdigit() or int(prefix) > 128):
        raise ValueError(f"prefix length {prefix!r} is not between 0 and 128")
    if address.is_unspecified or address.is_multicast or address.is_loopback:
        raise ValueError("an unspecified, multicast or loopback address cannot be a container's address")
    return Inet6(str(address), int(prefix) if prefix else 64)


def _gateway(version: int) -> Callable[[str], str]:
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address

    def validate(value: str) -> str:
        if value in ("auto", "dev"):
            return value
        try:
            address = cls(value)
        except ValueError:
            raise ValueError(f"expected an IPv{version} address, 'auto' (the link's address) or 'dev' "
                             "(a device route)") from None
        if address.is_unspecified or address.is_multicast:
            raise ValueError("a gateway cannot be an unspecified or multicast address")
        return str(address)

    return validate


def _macvlan_mode(value: str) -> str:
    if value not in MACVLAN_MODES:
        raise ValueError(f"expected one of {', '.join(MACVLAN_MODES)}")
    return value


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def validate(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return validate


def _vlan_id(value: str) -> int:
    if not value.isdigit() or int(value) > VLAN_ID_MAX:
        raise ValueError(f"expected a VLAN id between 0 and {VLAN_ID_MAX}")
    return int(value)


def _l2proxy(value: str) -> bool:
    if value not in ("0", "1"):
        raise ValueError("expected 0 or 1")
    return value == "1"


def _route(version: int) -> Callable[[str], Inet4 | Inet6]:
    network = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network

    def validate(value: str) -> Inet4 | Inet6:
        # As LXC: the prefix length is required; host bits may be set (the kernel keeps the network).
        text, slash, prefix = value.strip().partition("/")
        if not slash or not prefix.isdigit():
            raise ValueError(f"expected an IPv{version} NETWORK/PREFIX")
        try:
            net = network(f"{text}/{prefix}", strict=False)
        except ValueError as err:
            raise ValueError(f"{value.strip()!r} is not an IPv{version} network: {err}") from None
        address = str(net.network_address)
        return Inet4(address, net.prefixlen, None) if version == 4 else Inet6(address, net.prefixlen)

    return validate


def _script(value: str) -> str:
    if not value.split():
        raise ValueError("expected a script")
    return value


def _empty_only(value: str) -> str:
    raise ValueError("only an empty value is allowed here: it removes the network entries below this key")


def _unsupported(value: str) -> str:
    raise ValueError("this LXC network key is not supported by lxcframe")


def _unknown(value: str) -> str:
    keys = ", ".join(("type", *_DEVICE_KEYS, "script.up", "script.down"))
    raise ValueError(f"not a network key (lxc.net.<N>.KEY with N a decimal index and KEY one of: {keys})")


def config_keys() -> list[KeySpec]:
    n = "lxc.net.<N>"
    keys = [
        KeySpec("lxc.net", _empty_only, doc="an empty value removes every network entry"),
        KeySpec(n, _empty_only, doc="an empty value removes network entry N"),
        KeySpec(f"{n}.type", _net_type, doc="empty (own netns, only lo), none (the host's netns), veth, "
                "macvlan, ipvlan, vlan or phys"),
        KeySpec(f"{n}.link", ifname, doc="host device: bridge of a veth, lower device of a macvlan, ipvlan or "
                "vlan, the phys device itself"),
        KeySpec(f"{n}.flags", _flags, doc="'up' brings the device up"),
        KeySpec(f"{n}.name", ifname, doc="name inside the container (default eth<i>; a phys keeps its name)"),
        KeySpec(f"{n}.hwaddr", hwaddr, doc="MAC address inside the container; 'x' digits are random"),
        KeySpec(f"{n}.mtu", _mtu, doc="MTU of the device (and of a veth's host end)"),
        KeySpec(f"{n}.ipv4.address", inet4, multi=True, doc="ADDRESS[/PREFIX] [BROADCAST]; repeatable"),
        KeySpec(f"{n}.ipv4.gateway", _gateway(4), doc="default route: an address, 'auto' or 'dev'"),
        KeySpec(f"{n}.ipv6.address", inet6, multi=True, doc="ADDRESS[/PREFIX]; repeatable"),
        KeySpec(f"{n}.ipv6.gateway", _gateway(6), doc="default route: an address, 'auto' or 'dev'"),
        KeySpec(f"{n}.veth.pair", ifname, doc="name of the veth's host end (default veth + 6 random characters)"),
        KeySpec(f"{n}.veth.mode", _choice(VETH_MODES), doc="bridge (default: on link, if set) or router (host "
                "routes and neighbour proxies to the container, no bridge)"),
        KeySpec(f"{n}.veth.ipv4.route", _route(4), multi=True, doc="NETWORK/PREFIX routed on the host through "
                "the veth's host end; repeatable"),
        KeySpec(f"{n}.veth.ipv6.route", _route(6), multi=True, doc="NETWORK/PREFIX routed on the host through "
                "the veth's host end; repeatable"),
        KeySpec(f"{n}.macvlan.mode", _macvlan_mode, doc="private (default), vepa, bridge or passthru"),
        KeySpec(f"{n}.ipvlan.mode", _choice(IPVLAN_MODES), doc="l3 (default), l3s or l2"),
        KeySpec(f"{n}.ipvlan.isolation", _choice(IPVLAN_ISOLATIONS), doc="bridge (default), private or vepa"),
        KeySpec(f"{n}.vlan.id", _vlan_id, doc=f"802.1Q VLAN id of a vlan device on link (0-{VLAN_ID_MAX})"),
        KeySpec(f"{n}.l2proxy", _l2proxy, doc="1: neighbour proxy entries on link for the device's addresses"),
        KeySpec(f"{n}.script.up", _script, doc="run on the host once the device exists"),
        KeySpec(f"{n}.script.down", _script, doc="run on the host when the device goes away"),
        KeySpec("lxc.net.*", _unknown, doc="anything else under lxc.net is an error"),
    ]
    keys += [KeySpec(f"{n}.{key}", _unsupported, doc="LXC's, not supported") for key in UNSUPPORTED_KEYS]
    return keys


# --- the per-device view ---------------------------------------------------------------------------


def devices(config: ContainerConfig) -> tuple[NetDevice, ...]:
    """Every ``lxc.net.<N>`` entry that has a type, in index order."""
    found = []
    for index in config.indexes("lxc.net."):
        prefix = f"lxc.net.{index}."
        kind = config.get(prefix + "type")
        if kind is None:
            continue
        found.append(NetDevice(
            index=index,
            type=kind,
            link=config.get(prefix + "link"),
            up=bool(config.get(prefix + "flags")),
            name=config.get(prefix + "name"),
            hwaddr=config.get(prefix + "hwaddr"),
            mtu=config.get(prefix + "mtu"),
            ipv4=config.get_all(prefix + "ipv4.address"),
            ipv4_gateway=config.get(prefix + "ipv4.gateway"),
            ipv6=config.get_all(prefix + "ipv6.address"),
            ipv6_gateway=config.get(prefix + "ipv6.gateway"),
            veth_pair=config.get(prefix + "veth.pair"),
            macvlan_mode=config.get(prefix + "macvlan.mode", "private"),
            ipvlan_mode=config.get(prefix + "ipvlan.mode", "l3"),
            ipvlan_isolation=config.get(prefix + "ipvlan.isolation", "bridge"),
            vlan_id=config.get(prefix + "vlan.id", 0),
            veth_mode=config.get(prefix + "veth.mode", "bridge"),
            veth_routes=config.get_all(prefix + "veth.ipv4.route") + config.get_all(prefix + "veth.ipv6.route"),
            l2proxy=bool(config.get(prefix + "l2proxy", False)),
            script_up=config.get(prefix + "script.up"),
            script_down=config.get(prefix + "script.down"),
        ))
    return tuple(found)


def shares_host_netns(config: ContainerConfig) -> bool:
    """``lxc.net.<N>.type = none``: the container stays in the host's network namespace."""
    return any(device.type == "none" for device in devices(config))


def container_names(devs: tuple[NetDevice, ...]) -> dict[int, str]:
    """The name each device gets inside the container: its ``name``, a phys's own name, else eth<i>.

    Decided on the host before anything exists, so the monitor knows every name it hands over (the
    container's namespace holds only lo, so these names are free there).
    """
    names: dict[int, str] = {}
    for device in devs:
        if device.name:
            names[device.index] = device.name
        elif device.type == "phys" and device.link:
            names[device.index] = device.link
    taken = set(names.values())
    counter = 0
    for device in devs:
        if device.type in ("veth", "macvlan", "ipvlan", "vlan") and device.index not in names:
            while f"eth{counter}" in taken:
                counter += 1
            names[device.index] = f"eth{counter}"
            taken.add(names[device.index])
    return names


# --- cross-key checks ------------------------------------------------------------------------------



def problems(config: ContainerConfig) -> list[str]:
    """What is wrong with the network entries as a whole, each naming the line at fault."""
    found: list[str] = []
    typed = devices(config)
    for index in config.indexes("lxc.net."):
        prefix = f"lxc.net.{index}."
        if config.get(prefix + "type") is None:
            first = config.keys_under(prefix)[0]
            found.append(f"{config.where(first)}{first}: network entry {index} has no {prefix}type")
    for device in typed:
        found += _device_problems(config, device)
    nones = [d for d in typed if d.type == "none"]
    if len(nones) > 1:
        key = f"lxc.net.{nones[1].index}.type"
        found.append(f"{config.where(key)}{key}: 'none' is given twice (lxc.net.{nones[0].index} already shares "
                     "the host's network namespace)")
    elif nones and len(typed) > 1:
        key = f"lxc.net.{nones[0].index}.type"
        found.append(f"{config.where(key)}{key}: 'none' shares the host's network namespace and cannot be "
                     "combined with other network entries")
    found += _name_clashes(config, typed)
    return found


def _device_problems(config: ContainerConfig, device: NetDevice) -> list[str]:
    prefix = f"lxc.net.{device.index}."
    out: list[str] = []

    def bad(key: str, message: str) -> None:
        out.append(f"{config.where(prefix + key)}{prefix}{key}: {message}")

    if device.type in ("empty", "none"):
        unused = [k for k in _DEVICE_KEYS if k != "flags"]
        if device.type == "none":
            unused += ["script.up", "script.down"]
        for key in unused:
            if config.located(prefix + key) is not None:
                bad(key, f"a network of type {device.type} has no device to apply this to")
        return out
    if os.geteuid() != 0:
        # Creating or moving a host device takes CAP_NET_ADMIN on the host; LXC lends it to users
        # through its setuid lxc-user-nic, which lxcframe does not have.
        bad("type", f"a non-root user cannot create a {device.type} device on the host (lxcframe has no "
            "privileged helper such as LXC's lxc-user-nic): use empty (a loopback only) or run as root")
        return out
    for key, only in _ONLY_FOR.items():
        if config.located(prefix + key) is not None and device.type not in only:
            bad(key, f"only applies to type {' or '.join(only)}, not {device.type}")
    if device.type in ("macvlan", "ipvlan", "vlan", "phys") and not device.link:
        bad("type", f"a {device.type} network needs {prefix}link (the host device it uses)")
    if device.l2proxy and not device.link:
        bad("l2proxy", f"the proxy entries go on {prefix}link, which is not set")
    if device.l2proxy and device.type == "ipvlan" and device.ipvlan_mode != "l3s":
        # As LXC: the other modes do not pass the proxied traffic on.
        bad("l2proxy", f"an ipvlan needs {prefix}ipvlan.mode = l3s for l2proxy")
    router = device.type == "veth" and device.veth_mode == "router"
    if device.mtu is not None and device.mtu < 1280 and device.ipv6:
        bad("mtu", "IPv6 needs an MTU of at least 1280, and this device has IPv6 addresses")
    for version, gateway, addresses in ((4, device.ipv4_gateway, device.ipv4), (6, device.ipv6_gateway, device.ipv6)):
        if gateway is None:
            continue
        key = f"ipv{version}.gateway"
        if not device.up:
            bad(key, f"a gateway needs the device up ({prefix}flags = up)")
        if gateway == "auto" and not device.link:
            bad(key, f"'auto' takes the gateway from the link's address, and {prefix}link is not set")
        if gateway in ("auto", "dev"):
            continue
        address = ipaddress.ip_address(gateway)
        if version == 6 and address.is_link_local:
            continue  # reachable on the link whatever the addresses are
        if not addresses:
            bad(key, f"a gateway needs an IPv{version} address on the device ({prefix}ipv{version}.address)")
        elif not router and not any(address in item.network for item in addresses):
            # (A router's host end answers for its gateway wherever it is: the child routes to it first.)
            bad(key, f"{gateway} is outside the networks of this device's addresses "
                f"({', '.join(str(item.network) for item in addresses)})")
    return out


def _name_clashes(config: ContainerConfig, typed: tuple[NetDevice, ...]) -> list[str]:
    out: list[str] = []
    owner: dict[str, int] = {}
    names = container_names(typed)
    for device in typed:
        name = names.get(device.index)
        if name is None:
            continue
        other = owner.setdefault(name, device.index)
        if other != device.index:
            key = f"lxc.net.{device.index}." + ("name" if device.name else "type")
            out.append(f"{config.where(key)}{key}: {name!r} is already the name of lxc.net.{other} inside the "
                       f"container; set lxc.net.{device.index}.name")
    host: dict[str, int] = {}
    for device in typed:
        for key, value in (("veth.pair", device.veth_pair), ("link", device.link if device.type == "phys" else None)):
            if value is None:
                continue
            other = host.setdefault(value, device.index)
            if other != device.index:
                full = f"lxc.net.{device.index}.{key}"
                out.append(f"{config.where(full)}{full}: host device {value!r} is already used by lxc.net.{other}")
    return out
