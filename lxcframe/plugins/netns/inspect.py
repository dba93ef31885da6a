"""A running container's interfaces and addresses, read from the host without fork or setns.

Fast path: dumps on a NETLINK_GET_STRICT_CHK socket carrying IFLA_TARGET_NETNSID / IFA_TARGET_NETNSID
with the id the monitor assigned to the container's netns. Strict checking is what makes the kernel
honour IFA_TARGET_NETNSID at all: without it the attribute is ignored and the host's own addresses
come back. Every answer from the target echoes the attribute, which is checked.

Fallback (no id recorded, a caller in another netns than the one the id belongs to, or a kernel that
does not honour the target): a netlink socket created inside the container's netns by a short-lived
thread (setns of that thread only), then plain dumps. Correct, and about a thread start slower.

Both run on the raw layer of :mod:`.rawlink`, not on pyroute2: see there why.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from typing import Any, NamedTuple

import attrs

from lxcframe.plugins.netns import rawlink
from lxcframe.plugins.netns.rawlink import NetlinkError, RtnlSocket
from lxcframe.state import process_start_time

FAMILIES = {None: socket.AF_UNSPEC, "inet": socket.AF_INET, "inet6": socket.AF_INET6}
FAST, FALLBACK = "target-netnsid", "socket-in-netns"


@attrs.frozen
class NetnsRef:
    """How to reach a running container's network namespace from the host."""

    init_pid: int
    init_start: int | None = None
    #: The netns id the monitor assigned (in its own namespace, the host's).
    nsid: int | None = None

    @classmethod
    def from_state(cls, state: Any) -> NetnsRef:
        from lxcframe.plugins.netns.records import NetnsRecord

        record = state.record(NetnsRecord)
        return cls(state.init_pid, state.init_start, record.nsid if record is not None else None)


class Snapshot(NamedTuple):
    links: tuple[rawlink.Link, ...]
    addresses: tuple[rawlink.Address, ...]
    #: Which way it was read: :data:`FAST` or :data:`FALLBACK`.
    path: str


class _TargetIgnored(Exception):
    """An answer came without the target-netnsid echo: the kernel read our own namespace instead."""


def _netns_inode(path: str) -> int:
    return os.stat(path).st_ino


def read(ref: NetnsRef, *, links: bool = True, addresses: bool = True, family: int = socket.AF_UNSPEC,
         keep: Callable[[int, int], bool] | None = None) -> Snapshot:
    """Links and/or addresses of the container's netns, the fast way when possible.

    ``keep(scope, ifindex)`` selects the addresses wanted; the others are not even parsed.
    """
    # An id is only meaningful in the namespace that assigned it; _read_by_id asks the kernel whether,
    # in ours, it still names init's namespace, so a caller elsewhere simply takes the fallback.
    if ref.nsid is not None:
        try:
            return _read_by_id(ref, links, addresses, family, keep)
        except _TargetIgnored:
            pass
        except NetlinkError as err:
            if err.errno != errno.EINVAL:  # EINVAL: the kernel does not know the attribute (or the id)
                raise
        except OSError as err:
            if err.errno != errno.ENOPROTOOPT:  # no NETLINK_GET_STRICT_CHK (Linux < 4.20)
                raise
    with _socket_inside(ref) as sock:
        return Snapshot(
            tuple(rawlink.dump_links(sock)) if links else (),
            tuple(rawlink.dump_addresses(sock, family=family, keep=keep)[0]) if addresses else (),
            FALLBACK,
        )


def _read_by_id(ref: NetnsRef, links: bool, addresses: bool, family: int,
                keep: Callable[[int, int], bool] | None) -> Snapshot:
    assert ref.nsid is not None
    with RtnlSocket(strict=True) as sock:
        # The id must still name init's namespace (ids are reused once a namespace is gone).
        if rawlink.get_nsid(sock, pid=ref.init_pid) != ref.nsid:
            raise _TargetIgnored
        # Kernel side effect, once per caller namespace: describing the container's veth end, whose peer
        # lives in our namespace, makes the kernel give our own namespace an id in itself (the
        # IFLA_LINK_NETNSID of the answer). It is reused afterwards and harmless, as the ids ``ip link``
        # on the host makes for the namespaces of veth peers.
        found_links, links_echoed = rawlink.dump_links_echo(sock, ref.nsid) if links else ([], True)
        found_addresses, addresses_echoed = (rawlink.dump_addresses(sock, ref.nsid, family, keep) if addresses
                                             else ([], True))
    if not (links_echoed and addresses_echoed):
        raise _TargetIgnored
    return Snapshot(tuple(found_links), tuple(found_addresses), FAST)


def _socket_inside(ref: NetnsRef) -> RtnlSocket:
    ns_fd = os.open(f"/proc/{ref.init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        # The descriptor is what counts; check that it is still the container's init we opened.
        if ref.init_start is not None and process_start_time(ref.init_pid) != ref.init_start:
            raise ProcessLookupError(errno.ESRCH, f"init (pid {ref.init_pid}) has exited")
        if os.fstat(ns_fd).st_ino == _netns_inode("/proc/self/ns/net"):
            return RtnlSocket()  # a container sharing our namespace (lxc.net.0.type = none)
        return RtnlSocket(ns_fd=ns_fd)
    finally:
        os.close(ns_fd)


# --- python3-lxc's view --------------------------------------------------------------------------


def get_ips(ref: NetnsRef, interface: str | None = None, family: str | None = None,
            scope: int | None = None) -> tuple[str, ...]:
    """Addresses as python3-lxc's ``get_ips``: without ``interface``, those of every device but lo.

    ``family`` is ``"inet"``, ``"inet6"`` or ``None`` (both); ``scope`` is the kernel's address scope
    (0 global, 253 link, 254 host), global when ``None``, as python3-lxc's default.
    """
    if family not in FAMILIES:
        from lxcframe.errors import ContainerError

        raise ContainerError(f"family must be 'inet', 'inet6' or None, not {family!r}")
    wanted = 0 if scope is None else scope
    if interface is None:
        # lo always has index 1: no link dump needed to leave it out.
        snap = read(ref, links=False, family=FAMILIES[family],
                    keep=lambda s, i: s == wanted and i != rawlink.LOOPBACK_INDEX)
        return tuple(a.address for a in snap.addresses)
    snap = read(ref, family=FAMILIES[family], keep=lambda s, i: s == wanted)
    index = next((link.ifindex for link in snap.links if link.name == interface), -1)
    return tuple(a.address for a in snap.addresses if a.ifindex == index)


def get_interfaces(ref: NetnsRef) -> tuple[str, ...]:
    """Every interface name of the container's netns, lo included (as python3-lxc)."""
    return tuple(link.name for link in read(ref, addresses=False).links)


def summary(ref: NetnsRef) -> dict[str, Any]:
    """What ``info`` and ``ls --fancy`` show: global addresses of each family (lo left out), interfaces."""
    snap = read(ref, keep=lambda s, i: s == rawlink.RT_SCOPE_UNIVERSE and i != rawlink.LOOPBACK_INDEX)
    chosen = snap.addresses
    return {
        "ipv4": [a.address for a in chosen if a.family == socket.AF_INET],
        "ipv6": [a.address for a in chosen if a.family == socket.AF_INET6],
        "interfaces": [link.name for link in snap.links],
        "netns_id": ref.nsid,
        # lxc-info's Link / TX / RX lines, read in the container's namespace: its own view of what it
        # sent and received (lo left out: it never leaves the container).
        "links": [{"name": link.name, "tx_bytes": link.tx_bytes, "rx_bytes": link.rx_bytes}
                  for link in snap.links if link.ifindex != rawlink.LOOPBACK_INDEX],
    }
