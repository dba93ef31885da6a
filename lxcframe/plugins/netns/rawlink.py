"""The read path's rtnetlink on a raw ``AF_NETLINK`` socket: dumps of links and addresses, netns id look-ups.

Everything that configures a network goes through pyroute2 (:mod:`.iproute`; the netns id's request is
encoded by pyroute2's ``nsidmsg`` and only sent on this socket, :mod:`.nsid`). What stays here is what
``get_ips``, ``get_interfaces``, ``info``, ``ls --fancy`` and ``lxcframe check`` read, because pyroute2
0.9.7 cannot do it or does it slowly (measured by ``bench/netns_bench.py --facts``): its ``ifaddrmsg``
types IFA_TARGET_NETNSID as a string (the kernel wants an s32), ``get_addr(target_nsid=…)`` filters the
answers on a field none of them has and returns ``[]``, and one dump on a reused pyroute2 socket costs
~0.5 ms against ~0.03 ms here. Only the standard library.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from typing import NamedTuple

SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
#: Named NETLINK_DUMP_STRICT_CHK when Linux 4.20 added it; the kernel checks dump requests' headers and
#: attributes, and only then honours filters such as IFA_TARGET_NETNSID.
NETLINK_GET_STRICT_CHK = 12

NLMSG_ERROR = 2
NLMSG_DONE = 3

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
# Flags of an acknowledgement.
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200

_NLA_TYPE_MASK = 0x3FFF
NLMSGERR_ATTR_MSG = 1

HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_ATTR = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_S32 = struct.Struct("=i")

_RECV_SIZE = 1 << 16


class Message(NamedTuple):
    kind: int
    flags: int
    body: bytes


class NetlinkError(OSError):
    """The kernel refused a request; ``strerror`` carries its extended-ack reason when it gave one."""

    def __init__(self, code: int, what: str, reason: str = "") -> None:
        text = os.strerror(code) + (f" ({reason})" if reason else "")
        super().__init__(code, f"{what}: {text}" if what else text)
        self.reason = reason


# --- attributes ------------------------------------------------------------------------------------


def _align(length: int) -> int:
    return (length + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (_align(length) - length)


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def attr_s32(kind: int, value: int) -> bytes:
    return attr(kind, _S32.pack(value))


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """Attributes from ``offset`` on, by type (a repeated type keeps its last value)."""
    found: dict[int, bytes] = {}
    end = len(data)
    while offset + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size or offset + length > end:
            break
        found[kind & _NLA_TYPE_MASK] = data[offset + _ATTR.size : offset + length]
        offset += _align(length)
    return found


def s32(payload: bytes) -> int:
    value: int = _S32.unpack_from(payload)[0]
    return value


def text(payload: bytes) -> str:
    return payload.split(b"\0", 1)[0].decode(errors="replace")


# --- the socket ------------------------------------------------------------------------------------


def netlink_socket() -> socket.socket:
    """A NETLINK_ROUTE socket with extended acks, close-on-exec.

    SOCK_DGRAM, which netlink treats exactly as SOCK_RAW: it is also the type asyncio (and so pyroute2's
    ``IPRoute(use_socket=…)``) accepts for a datagram endpoint.
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    try:
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    except OSError:
        pass  # before Linux 4.12: errors come without the kernel's reason
    return sock


def netlink_socket_inside(ns_fd: int) -> socket.socket:
    """A netlink socket that belongs to the network namespace ``ns_fd`` refers to.

    A socket stays in the namespace it was created in, so a short-lived thread joins that namespace,
    creates it and ends. setns(CLONE_NEWNET) only changes the calling thread, which is allowed in a
    multi-threaded process: the caller's own threads never leave their namespace.
    """
    from lxcframe import syscalls

    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            syscalls.setns(ns_fd, syscalls.CLONE_NEWNET)
            made.append(netlink_socket())
        except BaseException as err:  # handed to the caller's thread
            failed.append(err)

    worker = threading.Thread(target=work, name="lxcframe-netns-socket", daemon=True)
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return made[0]


class RtnlSocket:
    """One NETLINK_ROUTE socket for the read path: dumps, RTM_GETNSID, and the RTM_NEWNSID that
    :mod:`.nsid` has pyroute2 encode.

    ``strict`` sets NETLINK_GET_STRICT_CHK (an :class:`OSError` if the kernel lacks it). ``ns_fd``
    opens the socket inside that network namespace instead of the caller's.
    """

    def __init__(self, *, strict: bool = False, ns_fd: int | None = None) -> None:
        self._sock = netlink_socket() if ns_fd is None else netlink_socket_inside(ns_fd)
        try:
            if strict:
                self._sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            # No bind(): the kernel binds a netlink socket to a free port id at its first send.
        except BaseException:
            self._sock.close()
            raise
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RtnlSocket:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self._seq += 1
        self._sock.send(HEADER.pack(HEADER.size + len(body), kind, flags, self._seq, 0) + body)
        return self._seq

    def _messages(self, seq: int) -> Iterable[Message]:
        while True:
            data = self._sock.recv(_RECV_SIZE)
            offset = 0
            while offset + HEADER.size <= len(data):
                length, kind, flags, msg_seq, _port = HEADER.unpack_from(data, offset)
                if length < HEADER.size:
                    break
                if msg_seq == seq:
                    yield Message(kind, flags, data[offset + HEADER.size : offset + length])
                offset += _align(length)

    def request(self, kind: int, body: bytes, *, flags: int = 0, what: str = "") -> list[Message]:
        """Send a request and wait for its ack; returns what the kernel answered before the ack."""
        seq = self._send(kind, NLM_F_REQUEST | NLM_F_ACK | flags, body)
        replies: list[Message] = []
        for message in self._messages(seq):
            if message.kind == NLMSG_ERROR:
                code = -s32(message.body)
                if code:
                    raise NetlinkError(code, what, _ack_reason(message))
                return replies
            replies.append(message)
        return replies  # not reached: _messages only ends by raising

    def dump(self, kind: int, body: bytes, *, what: str = "") -> list[Message]:
        """Send a dump request and collect every message until NLMSG_DONE."""
        seq = self._send(kind, NLM_F_REQUEST | NLM_F_DUMP, body)
        replies: list[Message] = []
        for message in self._messages(seq):
            if message.kind == NLMSG_DONE:
                # A dump that failed after it started reports the error here (with its reason).
                code = -s32(message.body) if len(message.body) >= 4 else 0
                if code > 0:
                    reason = ""
                    if message.flags & NLM_F_ACK_TLVS:
                        reason = text(parse_attrs(message.body, 4).get(NLMSGERR_ATTR_MSG, b""))
                    raise NetlinkError(code, what, reason)
                return replies
            if message.kind == NLMSG_ERROR:
                code = -s32(message.body)
                raise NetlinkError(code or 5, what, _ack_reason(message))
            replies.append(message)
        return replies  # not reached


def _ack_reason(message: Message) -> str:
    """The extended-ack text of an NLMSG_ERROR, if the kernel put one there."""
    if not message.flags & NLM_F_ACK_TLVS or len(message.body) < 4 + HEADER.size:
        return ""
    offset = 4 + HEADER.size
    if not message.flags & NLM_F_CAPPED:
        offset = 4 + _align(HEADER.unpack_from(message.body, 4)[0])
    return text(parse_attrs(message.body, offset).get(NLMSGERR_ATTR_MSG, b""))


# --- what the read path asks for ---------------------------------------------------------------------

RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_GETNSID = 90

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU = 1, 3, 4
#: struct rtnl_link_stats64: rx_packets, tx_packets, rx_bytes, tx_bytes, … (u64 each).
IFLA_STATS64 = 23
_STATS64_BYTES = struct.Struct("=16xQQ")
#: IFLA_IF_NETNSID before Linux 4.20; an s32 naming the namespace a dump acts on.
IFLA_TARGET_NETNSID = 46
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL = 1, 2, 3
IFA_TARGET_NETNSID = 10
NETNSA_NSID, NETNSA_PID, NETNSA_FD = 1, 2, 3
NETNSA_NSID_NOT_ASSIGNED = -1

RT_SCOPE_UNIVERSE = 0
IFF_UP = 0x1
LOOPBACK_INDEX = 1  # the loopback device has index 1 in every network namespace

_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
_RTGEN = struct.Struct("=B3x")


# Plain named tuples, not attrs classes: a dump makes one per link or address, on the path of get_ips.
class Link(NamedTuple):
    ifindex: int
    name: str
    flags: int
    mtu: int
    address: str
    #: Bytes received and sent, from the link's IFLA_STATS64 (0 when the answer had none).
    rx_bytes: int = 0
    tx_bytes: int = 0

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


def _target(kind: int, nsid: int | None) -> bytes:
    return attr_s32(kind, nsid) if nsid is not None else b""


def parse_link_echo(message: Message) -> tuple[Link, bool]:
    """A link, and whether the answer echoed IFLA_TARGET_NETNSID (it came from the target namespace).

    Hand-rolled attribute walk: a link carries dozens of attributes and only five matter (the byte
    counts of its statistics among them), so nothing else is sliced or stored.
    """
    body = message.body
    _family, _type, index, flags, _change = _IFINFO.unpack_from(body)
    name, mtu, address, echoed, rx, tx = "", 0, "", False, 0, 0
    offset, end = _IFINFO.size, len(body)
    while offset + 4 <= end:
        length, kind = _ATTR.unpack_from(body, offset)
        if length < 4:
            break
        kind &= _NLA_TYPE_MASK
        if kind == IFLA_IFNAME:
            name = body[offset + 4 : offset + length].split(b"\0", 1)[0].decode(errors="replace")
        elif kind == IFLA_MTU:
            mtu = _U32.unpack_from(body, offset + 4)[0]
        elif kind == IFLA_ADDRESS:
            address = ":".join(f"{b:02x}" for b in body[offset + 4 : offset + length])
        elif kind == IFLA_TARGET_NETNSID:
            echoed = True
        elif kind == IFLA_STATS64 and length >= 4 + _STATS64_BYTES.size:
            rx, tx = _STATS64_BYTES.unpack_from(body, offset + 4)
        offset += _align(length)
    return Link(index, name, flags, mtu, address, rx, tx), echoed


def dump_links_echo(sock: RtnlSocket, nsid: int | None = None) -> tuple[list[Link], bool]:
    """Every link, of the socket's namespace or (with ``nsid``) of the one that id names, and whether every
    answer echoed the target id."""
    body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _target(IFLA_TARGET_NETNSID, nsid)
    found: list[Link] = []
    echoed = True
    for message in sock.dump(RTM_GETLINK, body, what="dump links"):
        if message.kind == RTM_NEWLINK:
            link, has_echo = parse_link_echo(message)
            found.append(link)
            echoed = echoed and has_echo
    return found, echoed


def dump_links(sock: RtnlSocket, nsid: int | None = None) -> list[Link]:
    return dump_links_echo(sock, nsid)[0]


def parse_address(message: Message) -> tuple[Address, dict[int, bytes]]:
    family, prefixlen, _flags, scope, index = _IFADDR.unpack_from(message.body)
    found = parse_attrs(message.body, _IFADDR.size)
    # IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point links.
    raw = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS, b"")
    address = socket.inet_ntop(family, raw) if raw else ""
    return Address(index, family, address, prefixlen, scope, text(found.get(IFA_LABEL, b""))), found


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
        offset += _align(length)
    raw = local or peer
    return Address(index, family, socket.inet_ntop(family, raw) if raw else "", prefixlen, scope, label), echoed


def dump_addresses(sock: RtnlSocket, nsid: int | None = None, family: int = socket.AF_UNSPEC,
                   keep: Callable[[int, int], bool] | None = None) -> tuple[list[Address], bool]:
    """Addresses, only those whose (scope, ifindex) ``keep`` accepts, and whether the answers echoed
    the target id (checked on the first answer and on every one kept: a kernel that ignored the
    target echoes it on none). Unkept answers are not parsed, which is most of what ``get_ips`` saves.
    """
    body = _IFADDR.pack(family, 0, 0, 0, 0) + _target(IFA_TARGET_NETNSID, nsid)
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


def dump_addresses_raw(sock: RtnlSocket, nsid: int | None = None, family: int = socket.AF_UNSPEC
                       ) -> list[tuple[Address, dict[int, bytes]]]:
    """Every address, with its attributes, of the socket's namespace or the one ``nsid`` names.

    The kernel honours IFA_TARGET_NETNSID only on a socket with NETLINK_GET_STRICT_CHK; without it the
    attribute is silently ignored and the socket's own addresses come back. Callers can tell by the
    echo: every answer from the target namespace carries IFA_TARGET_NETNSID itself.
    """
    body = _IFADDR.pack(family, 0, 0, 0, 0) + _target(IFA_TARGET_NETNSID, nsid)
    return [parse_address(m) for m in sock.dump(RTM_GETADDR, body, what="dump addresses") if m.kind == RTM_NEWADDR]


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
        replies = sock.request(RTM_GETNSID, _RTGEN.pack(socket.AF_UNSPEC) + part, what="look up a netns id")
    except NetlinkError as err:
        if err.errno == errno.ENOENT:  # no namespace has that id
            return None
        raise
    for message in replies:
        value = parse_attrs(message.body, _RTGEN.size).get(NETNSA_NSID)
        if value is not None:
            found = s32(value)
            return None if found == NETNSA_NSID_NOT_ASSIGNED else found
    return None
