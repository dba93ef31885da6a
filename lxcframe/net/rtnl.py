"""The rtnetlink requests lxcframe sends: links, addresses, routes and network-namespace ids.

Each function takes an open :class:`~lxcframe.net.netlink.RtnlSocket`; the socket's namespace decides
where the request acts (see ``RtnlSocket(ns_fd=…)``), except for the ``nsid`` arguments of the dumps,
which name another namespace by its id in the socket's own namespace.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from typing import NamedTuple

from lxcframe.net import netlink as nl
from lxcframe.net.netlink import Message, RtnlSocket, attr, attr_nested, attr_s32, attr_str, attr_u32

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE = 24
RTM_NEWNSID, RTM_DELNSID, RTM_GETNSID = 88, 89, 90
RTNLGRP_NSID = 28

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_NET_NS_FD = 18, 28
#: IFLA_IF_NETNSID before Linux 4.20; an s32 naming the namespace a request or dump acts on.
IFLA_TARGET_NETNSID = 46
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_MACVLAN_MODE = 1

IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST = 1, 2, 3, 4
IFA_TARGET_NETNSID = 10

RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3  # what ``ip route add`` uses
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST = 1

NETNSA_NSID, NETNSA_PID, NETNSA_FD = 1, 2, 3
NETNSA_NSID_NOT_ASSIGNED = -1

IFF_UP = 0x1
LOOPBACK_INDEX = 1  # the loopback device has index 1 in every network namespace

MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8}

_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTGEN = struct.Struct("=B3x")
_ATTR = struct.Struct("=HH")
_U32 = struct.Struct("=I")


# Plain named tuples, not attrs classes: a dump makes one per link or address, on the path of get_ips.
class Link(NamedTuple):
    ifindex: int
    name: str
    flags: int
    mtu: int
    address: str

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)


class Address(NamedTuple):
    ifindex: int
    family: int
    address: str
    prefixlen: int
    scope: int
    label: str


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def _mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _ip_bytes(family: int, address: str) -> bytes:
    return socket.inet_pton(family, address)


# --- links -----------------------------------------------------------------------------------------


def parse_link(message: Message) -> Link:
    return parse_link_echo(message)[0]


def parse_link_echo(message: Message) -> tuple[Link, bool]:
    """A link, and whether the answer echoed IFLA_TARGET_NETNSID (it came from the target namespace).

    Hand-rolled attribute walk: a link carries dozens of attributes (statistics…) and only four matter,
    so nothing else is sliced or stored.
    """
    body = message.body
    _family, _type, index, flags, _change = _IFINFO.unpack_from(body)
    name, mtu, address, echoed = "", 0, "", False
    offset, end = _IFINFO.size, len(body)
    while offset + 4 <= end:
        length, kind = _ATTR.unpack_from(body, offset)
        if length < 4:
            break
        kind &= 0x3FFF
        if kind == IFLA_IFNAME:
            name = body[offset + 4 : offset + length].split(b"\0", 1)[0].decode(errors="replace")
        elif kind == IFLA_MTU:
            mtu = _U32.unpack_from(body, offset + 4)[0]
        elif kind == IFLA_ADDRESS:
            address = _mac_text(body[offset + 4 : offset + length])
        elif kind == IFLA_TARGET_NETNSID:
            echoed = True
        offset += (length + 3) & ~3
    return Link(index, name, flags, mtu, address), echoed


def get_link(sock: RtnlSocket, name: str) -> Link:
    """The link called ``name`` in the socket's namespace (``ENODEV`` when there is none)."""
    replies = sock.request(RTM_GETLINK, ifinfo() + attr_str(IFLA_IFNAME, name), what=f"find link {name}")
    return parse_link(next(m for m in replies if m.kind == RTM_NEWLINK))


def dump_links(sock: RtnlSocket, nsid: int | None = None) -> list[Link]:
    """Every link, of the socket's namespace or (with ``nsid``) of the namespace that id names."""
    body = ifinfo() + (attr_s32(IFLA_TARGET_NETNSID, nsid) if nsid is not None else b"")
    return [parse_link(m) for m in sock.dump(RTM_GETLINK, body, what="dump links") if m.kind == RTM_NEWLINK]


def _link_attrs(name: str | None, mtu: int | None, hwaddr: str | None, ns_fd: int | None) -> list[bytes]:
    parts = []
    if name is not None:
        parts.append(attr_str(IFLA_IFNAME, name))
    if mtu is not None:
        parts.append(attr_u32(IFLA_MTU, mtu))
    if hwaddr is not None:
        parts.append(attr(IFLA_ADDRESS, _mac_bytes(hwaddr)))
    if ns_fd is not None:
        parts.append(attr_u32(IFLA_NET_NS_FD, ns_fd))
    return parts


def create_veth(sock: RtnlSocket, host_name: str, peer_name: str, peer_ns_fd: int, *, mtu: int | None = None,
                peer_hwaddr: str | None = None) -> None:
    """A veth pair: ``host_name`` here, ``peer_name`` created directly inside ``peer_ns_fd``.

    Creating the peer in its namespace (rather than moving it there afterwards) means it never holds a
    name on the host, so two containers cannot race for a temporary name.
    """
    peer = ifinfo() + b"".join(_link_attrs(peer_name, mtu, peer_hwaddr, peer_ns_fd))
    linkinfo = attr_nested(IFLA_LINKINFO, [
        attr_str(IFLA_INFO_KIND, "veth"),
        attr_nested(IFLA_INFO_DATA, [attr(VETH_INFO_PEER, peer)]),
    ])
    body = ifinfo() + b"".join(_link_attrs(host_name, mtu, None, None)) + linkinfo
    sock.request(RTM_NEWLINK, body, flags=nl.NLM_F_CREATE | nl.NLM_F_EXCL,
                 what=f"create veth pair {host_name}/{peer_name}")


def create_macvlan(sock: RtnlSocket, name: str, lower_index: int, mode: str, ns_fd: int, *,
                   mtu: int | None = None, hwaddr: str | None = None) -> None:
    """A macvlan on ``lower_index`` (a link of the socket's namespace), created inside ``ns_fd``."""
    linkinfo = attr_nested(IFLA_LINKINFO, [
        attr_str(IFLA_INFO_KIND, "macvlan"),
        attr_nested(IFLA_INFO_DATA, [attr_u32(IFLA_MACVLAN_MODE, MACVLAN_MODES[mode])]),
    ])
    body = (ifinfo() + attr_u32(IFLA_LINK, lower_index) + b"".join(_link_attrs(name, mtu, hwaddr, ns_fd))
            + linkinfo)
    sock.request(RTM_NEWLINK, body, flags=nl.NLM_F_CREATE | nl.NLM_F_EXCL, what=f"create macvlan {name}")


def set_link(sock: RtnlSocket, index: int, *, name: str | None = None, mtu: int | None = None,
             hwaddr: str | None = None, up: bool | None = None, master: int | None = None,
             ns_fd: int | None = None, what: str = "") -> None:
    """Change a link; with ``ns_fd`` it moves into that namespace (and takes ``name`` there)."""
    flags = change = 0
    if up is not None:
        change = IFF_UP
        flags = IFF_UP if up else 0
    parts = _link_attrs(name, mtu, hwaddr, ns_fd)
    if master is not None:
        parts.append(attr_u32(IFLA_MASTER, master))
    sock.request(RTM_NEWLINK, ifinfo(index, flags, change) + b"".join(parts), what=what or f"change link {index}")


def delete_link(sock: RtnlSocket, index: int, what: str = "") -> None:
    sock.request(RTM_DELLINK, ifinfo(index), what=what or f"delete link {index}")


# --- addresses and routes --------------------------------------------------------------------------


def parse_address(message: Message) -> tuple[Address, dict[int, bytes]]:
    family, prefixlen, _flags, scope, index = _IFADDR.unpack_from(message.body)
    found = nl.parse_attrs(message.body, _IFADDR.size)
    # IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point links.
    raw = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS, b"")
    address = socket.inet_ntop(family, raw) if raw else ""
    return Address(index, family, address, prefixlen, scope, nl.text(found.get(IFA_LABEL, b""))), found


def parse_address_echo(message: Message) -> tuple[Address, bool]:
    """An address, and whether the answer echoed IFA_TARGET_NETNSID; the hot path of ``get_ips``."""
    body = message.body
    family, prefixlen, _flags, scope, index = _IFADDR.unpack_from(body)
    local = peer = b""
    label = ""
    echoed = False
    offset, end = _IFADDR.size, len(body)
    while offset + 4 <= end:
        length, kind = _ATTR.unpack_from(body, offset)
        if length < 4:
            break
        if kind == IFA_LOCAL:
            local = body[offset + 4 : offset + length]
        elif kind == IFA_ADDRESS:
            peer = body[offset + 4 : offset + length]
        elif kind == IFA_LABEL:
            label = body[offset + 4 : offset + length].split(b"\0", 1)[0].decode(errors="replace")
        elif kind == IFA_TARGET_NETNSID:
            echoed = True
        offset += (length + 3) & ~3
    raw = local or peer
    return Address(index, family, socket.inet_ntop(family, raw) if raw else "", prefixlen, scope, label), echoed


def dump_addresses(sock: RtnlSocket, nsid: int | None = None, family: int = socket.AF_UNSPEC,
                   keep: Callable[[int, int], bool] | None = None) -> tuple[list[Address], bool]:
    """Addresses, only those whose (scope, ifindex) ``keep`` accepts, and whether the answers echoed
    the target id (checked on the first answer and on every one kept: a kernel that ignored the
    target echoes it on none). Unkept answers are not parsed, which is most of what ``get_ips`` saves.
    """
    body = _IFADDR.pack(family, 0, 0, 0, 0) + (attr_s32(IFA_TARGET_NETNSID, nsid) if nsid is not None else b"")
    found: list[Address] = []
    echoed = True
    first = True
    for message in sock.dump(RTM_GETADDR, body, what="dump addresses"):
        if message.kind != RTM_NEWADDR:
            continue
        if keep is not None and not first:
            _family, _prefix, _flags, scope, index = _IFADDR.unpack_from(message.body)
            if not keep(scope, index):
                continue
        address, has_echo = parse_address_echo(message)
        echoed = echoed and has_echo
        if keep is None or keep(address.scope, address.ifindex):
            found.append(address)
        first = False
    return found, echoed


def dump_links_echo(sock: RtnlSocket, nsid: int | None = None) -> tuple[list[Link], bool]:
    """Links, and whether every answer echoed the target id."""
    body = ifinfo() + (attr_s32(IFLA_TARGET_NETNSID, nsid) if nsid is not None else b"")
    found: list[Link] = []
    echoed = True
    for message in sock.dump(RTM_GETLINK, body, what="dump links"):
        if message.kind == RTM_NEWLINK:
            link, has_echo = parse_link_echo(message)
            found.append(link)
            echoed = echoed and has_echo
    return found, echoed


def dump_addresses_raw(sock: RtnlSocket, nsid: int | None = None, family: int = socket.AF_UNSPEC
                       ) -> list[tuple[Address, dict[int, bytes]]]:
    """Every address, with its attributes, of the socket's namespace or the one ``nsid`` names.

    The kernel honours IFA_TARGET_NETNSID only on a socket with NETLINK_GET_STRICT_CHK; without it the
    attribute is silently ignored and the socket's own addresses come back. Callers can tell by the
    echo: every answer from the target namespace carries IFA_TARGET_NETNSID itself.
    """
    body = _IFADDR.pack(family, 0, 0, 0, 0) + (attr_s32(IFA_TARGET_NETNSID, nsid) if nsid is not None else b"")
    return [parse_address(m) for m in sock.dump(RTM_GETADDR, body, what="dump addresses") if m.kind == RTM_NEWADDR]


def add_address(sock: RtnlSocket, index: int, family: int, address: str, prefixlen: int,
                broadcast: str | None = None) -> None:
    raw = _ip_bytes(family, address)
    parts = [attr(IFA_LOCAL, raw), attr(IFA_ADDRESS, raw)]
    if broadcast is not None:
        parts.append(attr(IFA_BROADCAST, _ip_bytes(family, broadcast)))
    sock.request(RTM_NEWADDR, _IFADDR.pack(family, prefixlen, 0, RT_SCOPE_UNIVERSE, index) + b"".join(parts),
                 flags=nl.NLM_F_CREATE | nl.NLM_F_EXCL, what=f"add address {address}/{prefixlen}")


def add_route(sock: RtnlSocket, family: int, index: int, *, gateway: str | None = None,
              destination: str | None = None, dst_len: int = 0) -> None:
    """A route in the main table: a default route via ``gateway``, or a device route to ``destination``."""
    scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
    parts = [attr_u32(RTA_OIF, index)]
    if gateway is not None:
        parts.append(attr(RTA_GATEWAY, _ip_bytes(family, gateway)))
    if destination is not None:
        parts.append(attr(RTA_DST, _ip_bytes(family, destination)))
    header = _RTMSG.pack(family, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0)
    target = f"via {gateway}" if gateway else f"to {destination}/{dst_len}"
    sock.request(RTM_NEWROUTE, header + b"".join(parts), flags=nl.NLM_F_CREATE | nl.NLM_F_EXCL,
                 what=f"add route {target}")


# --- network namespace ids -------------------------------------------------------------------------


def _nsid_request(*parts: bytes) -> bytes:
    return _RTGEN.pack(socket.AF_UNSPEC) + b"".join(parts)


def assign_nsid(sock: RtnlSocket, ns_fd: int) -> int:
    """Give the namespace ``ns_fd`` an id in the socket's namespace (the kernel picks it) and return it.

    An id that already exists is kept (the kernel answers EEXIST) and returned.
    """
    try:
        sock.request(RTM_NEWNSID, _nsid_request(attr_u32(NETNSA_FD, ns_fd), attr_s32(NETNSA_NSID, -1)),
                     what="assign a netns id")
    except nl.NetlinkError as err:
        if err.errno != 17:  # EEXIST
            raise
    nsid = get_nsid(sock, ns_fd=ns_fd)
    if nsid is None:
        raise nl.NetlinkError(2, "assign a netns id", "the kernel kept no id")
    return nsid


def get_nsid(sock: RtnlSocket, *, ns_fd: int | None = None, pid: int | None = None, nsid: int | None = None
             ) -> int | None:
    """The id of the namespace of ``ns_fd`` or of process ``pid``, or check that ``nsid`` names one.

    ``None`` when the namespace has no id in the socket's namespace (or no namespace has ``nsid``).
    """
    if ns_fd is not None:
        part = attr_u32(NETNSA_FD, ns_fd)
    elif pid is not None:
        part = attr_u32(NETNSA_PID, pid)
    else:
        part = attr_s32(NETNSA_NSID, nsid if nsid is not None else NETNSA_NSID_NOT_ASSIGNED)
    try:
        replies = sock.request(RTM_GETNSID, _nsid_request(part), what="look up a netns id")
    except nl.NetlinkError as err:
        if err.errno == 2:  # ENOENT: no namespace has that id
            return None
        raise
    for message in replies:
        value = nl.parse_attrs(message.body, _RTGEN.size).get(NETNSA_NSID)
        if value is not None:
            found = nl.s32(value)
            return None if found == NETNSA_NSID_NOT_ASSIGNED else found
    return None


def wait_nsid_released(sock: RtnlSocket, nsid: int, timeout: float) -> bool:
    """Wait until ``nsid`` names no namespace any more; False if it still does after ``timeout`` s.

    Linux has no RTM_DELNSID request (it answers EOPNOTSUPP): an id goes when its namespace dies,
    which the kernel does asynchronously after the last reference is dropped. Its RTM_DELNSID
    notice was not delivered to RTNLGRP_NSID listeners in our checks (kernel 6.18), so ask instead.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while get_nsid(sock, nsid=nsid) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True
