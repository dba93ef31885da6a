"""Network configuration through pyroute2: links, addresses, routes and moves between namespaces.

Only the stages that configure devices import this module (the monitor's ``setup_network`` for a
``veth``, ``macvlan`` or ``phys`` device, its undos and cleanup, and the child's ``child_network``), so
pyroute2's whole package (~170 ms to import, :mod:`.pyroute2_import`) costs nothing to a command whose
container has no device. Every :class:`Rtnl` is made by the process that uses it, after the fork that
made the container's child, and closed before its stage ends: pyroute2 0.9.7 runs each ``IPRoute`` on an
asyncio loop of its own (an epoll descriptor and a socket pair beside the netlink socket; it starts no
thread), none of which a child may inherit. Importing the modules alone makes no descriptor and no
thread, which is why ``warm_up`` may run before the fork.

The netns id, which every container with a network namespace of its own gets, is not done here but in
:mod:`.nsid`, on a plain socket with pyroute2's message class alone.

pyroute2's ``NetlinkError`` is no ``OSError``: each request turns it into
:class:`~lxcframe.plugins.netns.rawlink.NetlinkError`, naming what was asked and carrying the kernel's
extended-ack text, so callers catch one error class whichever side of the network code failed.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import Any

from lxcframe.plugins.netns import pyroute2_import
from lxcframe.plugins.netns.rawlink import (
    IFF_UP,
    LOOPBACK_INDEX,
    RT_SCOPE_UNIVERSE,
    Address,
    Link,
    NetlinkError,
    netlink_socket_inside,
)

__all__ = ["IFF_UP", "LOOPBACK_INDEX", "RT_SCOPE_UNIVERSE", "Address", "Link", "NetlinkError", "Rtnl", "warm_up"]

RT_SCOPE_LINK = 253
MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8}
#: IFLA_IPVLAN_MODE values and IFLA_IPVLAN_FLAGS bits (linux/if_link.h; bridge isolation is no bit).
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
IPVLAN_ISOLATIONS = {"bridge": 0, "private": 1, "vepa": 2}
#: ndm_flags of a neighbour proxy entry.
NTF_PROXY = 0x08


def ipvlan_kind() -> None:
    """Teach pyroute2 IFLA_IPVLAN_FLAGS (the isolation), which its 0.9.7 ``ipvlan`` class lacks.

    Through pyroute2's own extension point for link kinds (``register_link_kind``), with a class that
    has its predecessor's attributes and the flags after them; registering again changes nothing.
    """
    from pyroute2.netlink import nla
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    if "IFLA_IPVLAN_FLAGS" in dict(ifinfmsg.ifinfo.data_map["ipvlan"].nla_map):
        return

    class ipvlan_data(nla):
        prefix = "IFLA_"
        nla_map = (("IFLA_IPVLAN_UNSPEC", "none"), ("IFLA_IPVLAN_MODE", "uint16"),
                   ("IFLA_IPVLAN_FLAGS", "uint16"))

    ifinfmsg.ifinfo.register_link_kind(module={"ipvlan": ipvlan_data})


def warm_up() -> None:
    """Import what :class:`Rtnl` uses, so that a child forked afterwards does not import it again."""
    pyroute2_import.complete()
    import pyroute2.iproute.linux  # noqa: F401

    ipvlan_kind()


@contextlib.contextmanager
def _asking(what: str) -> Iterator[None]:
    from pyroute2.netlink.exceptions import NetlinkError as Pyroute2Error

    try:
        yield
    except Pyroute2Error as err:
        code = err.code if isinstance(err.code, int) and err.code > 0 else errno.EIO
        said = str(err.args[1]) if len(err.args) > 1 and err.args[1] else ""
        raise NetlinkError(code, what, "" if said == os.strerror(code) else said) from None


def _link(message: Any) -> Link:
    return Link(message["index"], message.get_attr("IFLA_IFNAME") or "", message["flags"],
                message.get_attr("IFLA_MTU") or 0, message.get_attr("IFLA_ADDRESS") or "")


class Rtnl:
    """One pyroute2 ``IPRoute`` with extended acks, in the caller's network namespace or in ``ns_fd``'s.

    A socket inside another namespace is made by :func:`~.rawlink.netlink_socket_inside` (a short-lived
    thread's setns) and handed to pyroute2 with ``use_socket``: pyroute2's own ``netns=`` forks a process.
    """

    def __init__(self, *, ns_fd: int | None = None) -> None:
        ip_route = pyroute2_import.complete().IPRoute

        if ns_fd is None:
            self._ipr = ip_route(ext_ack=True)
            return
        sock = netlink_socket_inside(ns_fd)
        try:
            self._ipr = ip_route(use_socket=sock)
        except BaseException:
            sock.close()
            raise

    def close(self) -> None:
        self._ipr.close()  # also closes a socket given with use_socket (its asyncio transport does)

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- links -------------------------------------------------------------------------------------

    def link(self, name: str) -> Link:
        """The link called ``name`` (a NetlinkError ``ENODEV`` when there is none)."""
        with _asking(f"find link {name}"):
            return _link(self._ipr.link("get", ifname=name)[0])

    def links(self) -> list[Link]:
        with _asking("list links"):
            return [_link(message) for message in self._ipr.link("dump")]

    def create_veth(self, host_name: str, peer_name: str, peer_ns_fd: int, *, mtu: int | None = None) -> None:
        """A veth pair: ``host_name`` here, ``peer_name`` created directly inside ``peer_ns_fd``.

        Creating the peer in its namespace (rather than moving it there afterwards) means it never holds a
        name on the host, so two containers cannot race for a temporary name.
        """
        sized = {} if mtu is None else {"mtu": mtu}
        with _asking(f"create veth pair {host_name}/{peer_name}"):
            self._ipr.link("add", ifname=host_name, kind="veth", **sized,
                           peer={"ifname": peer_name, "net_ns_fd": peer_ns_fd, **sized})

    def create_macvlan(self, name: str, lower_index: int, mode: str, ns_fd: int) -> None:
        """A macvlan on ``lower_index`` (a link of this namespace), created inside ``ns_fd``."""
        with _asking(f"create macvlan {name}"):
            self._ipr.link("add", ifname=name, kind="macvlan", link=lower_index,
                           macvlan_mode=MACVLAN_MODES[mode], net_ns_fd=ns_fd)

    def create_ipvlan(self, name: str, lower_index: int, mode: str, isolation: str, ns_fd: int) -> None:
        """An ipvlan on ``lower_index`` (a link of this namespace), created inside ``ns_fd``."""
        ipvlan_kind()
        flags = IPVLAN_ISOLATIONS[isolation]
        # As LXC: the flags only when not bridge, the kernel's default (older kernels know no flags).
        extra = {"ipvlan_flags": flags} if flags else {}
        with _asking(f"create ipvlan {name}"):
            self._ipr.link("add", ifname=name, kind="ipvlan", link=lower_index, ipvlan_mode=IPVLAN_MODES[mode],
                           net_ns_fd=ns_fd, **extra)

    def create_vlan(self, name: str, lower_index: int, vlan_id: int, ns_fd: int) -> None:
        """An 802.1Q vlan device with ``vlan_id`` on ``lower_index`` (a link of this namespace), created
        inside ``ns_fd``."""
        with _asking(f"create vlan {name} (id {vlan_id})"):
            self._ipr.link("add", ifname=name, kind="vlan", link=lower_index, vlan_id=vlan_id, net_ns_fd=ns_fd)

    def set_link(self, index: int, *, what: str, name: str | None = None, mtu: int | None = None,
                 hwaddr: str | None = None, up: bool | None = None, master: int | None = None,
                 ns_fd: int | None = None) -> None:
        """Change a link; with ``ns_fd`` it moves into that namespace (and takes ``name`` there)."""
        changes: dict[str, Any] = {key: value for key, value in (
            ("ifname", name), ("mtu", mtu), ("address", hwaddr), ("master", master), ("net_ns_fd", ns_fd),
        ) if value is not None}
        if up is not None:
            changes["state"] = "up" if up else "down"
        with _asking(what):
            self._ipr.link("set", index=index, **changes)

    def delete_link(self, index: int, *, what: str) -> None:
        with _asking(what):
            self._ipr.link("del", index=index)

    # --- addresses and routes ----------------------------------------------------------------------

    def addresses(self, family: int) -> list[Address]:
        with _asking("list addresses"):
            return [Address(m["index"], m["family"], m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS") or "",
                            m["prefixlen"], m["scope"], m.get_attr("IFA_LABEL") or "")
                    for m in self._ipr.addr("dump", family=family)]

    def add_address(self, index: int, family: int, address: str, prefixlen: int,
                    broadcast: str | None = None) -> None:
        extra = {} if broadcast is None else {"broadcast": broadcast}
        with _asking(f"add address {address}/{prefixlen}"):
            self._ipr.addr("add", index=index, family=family, address=address, local=address,
                           prefixlen=prefixlen, **extra)

    def add_route(self, family: int, index: int, *, gateway: str | None = None, destination: str | None = None,
                  dst_len: int = 0) -> None:
        """A route in the main table: a default route via ``gateway``, or a device route to ``destination``
        (the default route when it is ``None``)."""
        spec: dict[str, Any] = {"family": family, "oif": index, "proto": "boot",
                                "scope": RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK}
        if gateway is not None:
            spec["gateway"] = gateway
        if destination is not None:
            spec.update(dst=destination, dst_len=dst_len)
        target = f"via {gateway}" if gateway else f"to {destination}/{dst_len}" if destination else "default dev"
        with _asking(f"add route {target}"):
            self._ipr.route("add", **spec)

    def delete_route(self, family: int, index: int, destination: str, dst_len: int) -> None:
        """Delete the device route to ``destination``/``dst_len`` through ``index`` (main table)."""
        with _asking(f"delete route to {destination}/{dst_len}"):
            self._ipr.route("del", family=family, oif=index, dst=destination, dst_len=dst_len, proto="boot",
                            scope=RT_SCOPE_LINK)

    def add_proxy(self, index: int, address: str) -> None:
        """A neighbour proxy entry (ARP or NDP, by the address) for ``address`` on link ``index``."""
        with _asking(f"add neighbour proxy {address}"):
            self._ipr.neigh("add", ifindex=index, dst=address, flags=NTF_PROXY)

    def delete_proxy(self, index: int, address: str) -> None:
        with _asking(f"delete neighbour proxy {address}"):
            self._ipr.neigh("del", ifindex=index, dst=address, flags=NTF_PROXY)

    def proxies(self, family: int) -> list[tuple[int, str]]:
        """Every neighbour proxy entry of ``family`` in this namespace, as (ifindex, address)."""
        with _asking("list neighbour proxies"):
            # A dump request with exactly NTF_PROXY in ndm_flags lists the proxy table (and only it).
            return [(m["ifindex"], m.get_attr("NDA_DST"))
                    for m in self._ipr.neigh("dump", family=family, flags=NTF_PROXY)]
