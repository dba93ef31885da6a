"""The child's half of the network stage: configure the devices the monitor moved into the netns.

Why here and not from the monitor: the child already lives in the container's network namespace, so
a netlink socket it opens acts there with no setns and no descriptor passing; it is single-threaded
and makes its own pyroute2 ``IPRoute`` (never one inherited from the monitor, which makes its own only
after this child was forked), closed before the stage ends. Addresses and routes can only
be added by a socket inside the namespace anyway (RTM_NEWADDR and RTM_NEWROUTE know no target netns
id), and in a user namespace it is the child that holds CAP_NET_ADMIN over the netns it created. The
monitor keeps what needs the host: creating devices, moving them in, naming them, the netns id.
"""

from __future__ import annotations

import errno
import fcntl
import socket
import struct
from typing import Any

import attrs

from lxcframe.plugins.netns.iproute import IFF_UP, NetlinkError, Rtnl

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
#: struct ifreq with its union as ifr_flags: the name, a short, and the rest of the 40-byte union.
_IFREQ_FLAGS = "=16sH22x"


def _pairs(items: Any) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(item) for item in items)


@attrs.frozen
class Inside:
    """One device as the child configures it; crosses the ``namespaces`` barrier in a :class:`NetInside`."""

    name: str
    up: bool = False
    hwaddr: str | None = None
    mtu: int | None = None
    #: (address, prefix length, broadcast or None)
    ipv4: tuple[tuple[Any, ...], ...] = attrs.field(default=(), converter=_pairs)
    #: (address, prefix length)
    ipv6: tuple[tuple[Any, ...], ...] = attrs.field(default=(), converter=_pairs)
    #: An address, or "dev" for a default route through the device without a gateway.
    ipv4_gateway: str | None = None
    ipv6_gateway: str | None = None


@attrs.frozen
class NetInside:
    """Handed to the child at the ``namespaces`` barrier: the devices it configures, in order."""

    devices: tuple[Inside, ...]


def configure(devices: list[Inside]) -> None:
    """lo up, then each device: MTU and MAC, addresses, up, default routes (LXC's order)."""
    loopback_up()
    if devices:
        with Rtnl() as rt:
            for device in devices:
                _configure(rt, device)


def loopback_up() -> None:
    """Bring ``lo`` up with the interface-flags ioctl, as crun does.

    Every container with a network namespace of its own needs this, most of them nothing else of the
    network code: an ``IPRoute`` for it would cost an ~170 ms import of pyroute2 on a cold ``execute``
    and ~3 ms to make (:mod:`.iproute`), the ioctl a few microseconds.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        request = struct.pack(_IFREQ_FLAGS, b"lo", 0)
        flags = struct.unpack(_IFREQ_FLAGS, fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(_IFREQ_FLAGS, b"lo", flags | IFF_UP))


def _configure(rt: Rtnl, device: Inside) -> None:
    index = rt.link(device.name).ifindex
    if device.mtu is not None or device.hwaddr is not None:
        # Devices arrive down (moving a device closes it), which a MAC change needs on most drivers.
        rt.set_link(index, mtu=device.mtu, hwaddr=device.hwaddr, what=f"set MTU/MAC of {device.name}")
    for address, prefixlen, broadcast in device.ipv4:
        rt.add_address(index, socket.AF_INET, address, prefixlen, broadcast)
    for address, prefixlen in device.ipv6:
        rt.add_address(index, socket.AF_INET6, address, prefixlen)
    if device.up:
        rt.set_link(index, up=True, what=f"bring {device.name} up")
    # Routes come last: a gateway is only reachable once the device is up with its addresses.
    for family, gateway, host_bits in ((socket.AF_INET, device.ipv4_gateway, 32),
                                       (socket.AF_INET6, device.ipv6_gateway, 128)):
        if gateway == "dev":
            rt.add_route(family, index)
        elif gateway is not None:
            try:
                rt.add_route(family, index, gateway=gateway)
            except NetlinkError as err:
                if err.errno not in (errno.ENETUNREACH, errno.EHOSTUNREACH):  # IPv4's and IPv6's word for it
                    raise
                # As LXC: a gateway outside the device's networks gets a host route first.
                rt.add_route(family, index, destination=gateway, dst_len=host_bits)
                rt.add_route(family, index, gateway=gateway)
