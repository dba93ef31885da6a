"""What the host routes and proxies for a container: ``veth.ipv4.route``/``veth.ipv6.route``,
``veth.mode = router`` and ``l2proxy``, done by the monitor as LXC does them (src/lxc/network.c).

* veth routes: a device route on the host to each configured network through the veth's host end.
* router mode: no bridge; forwarding on the host end; for each gateway a neighbour proxy entry on the
  host end (the container asks for its gateway there and the host answers), with IPv6 also proxy_ndp on
  it and ``net.ipv6.conf.all.forwarding = 1`` required; a host route to each of the container's
  addresses (/32, /128) through the host end.
* l2proxy: a neighbour proxy entry on ``link`` for each of the container's addresses, so that hosts on
  the link's network reach them through this host; it needs the link's forwarding (and, with IPv6
  addresses, its proxy_ndp) switched on beforehand, which is checked, not changed. An ipvlan (l3s) also
  gets a route to each address through ``lo``, which is what makes the host pass the traffic on.

Routes, proxies and sysctls of the host end go with it (the veth's undo deletes it). What l2proxy puts
on the link and ``lo`` stays unless removed: each entry gets its undo as it is made, and the state
record lists them, so a cleanup after a dead monitor removes them too (:func:`release_l2proxy`).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from lxcframe.context import HostContext
from lxcframe.plugins.netns.config import NetDevice
from lxcframe.plugins.netns.iproute import LOOPBACK_INDEX, NetlinkError, Rtnl


def _family(address: str) -> int:
    return socket.AF_INET if ipaddress.ip_address(address).version == 4 else socket.AF_INET6


def _host_bits(address: str) -> int:
    return 32 if ipaddress.ip_address(address).version == 4 else 128


def _sysctl(version: int, link: str, name: str) -> str:
    return f"/proc/sys/net/ipv{version}/conf/{link}/{name}"


def _read_sysctl(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError as err:
        raise RuntimeError(f"cannot read {path}: {err.strerror}") from None


def _write_sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(value)
    except OSError as err:
        raise RuntimeError(f"cannot write {value} to {path}: {err.strerror}") from None


def _require(version: int, link: str, name: str, key: str) -> None:
    path = _sysctl(version, link, name)
    if _read_sysctl(path) != "1":
        raise RuntimeError(f"{key} needs sysctl net.ipv{version}.conf.{link}.{name}=1 ({path} is not 1)")


# --- the veth's host end -----------------------------------------------------------------------------


def veth_routes(rt: Rtnl, device: NetDevice, host_index: int) -> None:
    """``veth.ipv4.route``/``veth.ipv6.route``: device routes on the host through the host end."""
    for route in device.veth_routes:
        rt.add_route(_family(route.address), host_index, destination=route.address, dst_len=route.prefixlen)


def router(rt: Rtnl, device: NetDevice, host: str, host_index: int, gateways: dict[int, str | None]) -> None:
    """``veth.mode = router`` on the host end ``host``: forwarding, gateway proxies, address routes.

    ``gateways`` are the gateways the container gets, by family (``auto`` already resolved).
    """
    key = f"lxc.net.{device.index}.veth.mode = router"
    for family, version in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
        gateway = gateways.get(family)
        if gateway is None or gateway == "dev":
            continue  # LXC proxies a gateway address only
        if version == 6:
            # The kernel routes no IPv6 packet without it; LXC checks it rather than switching the host over.
            _require(6, "all", "forwarding", key + " with an IPv6 gateway")
        _write_sysctl(_sysctl(version, host, "forwarding"), "1")
        if version == 6:
            _write_sysctl(_sysctl(6, host, "proxy_ndp"), "1")
        rt.add_proxy(host_index, gateway)
    for address in [item.address for item in device.ipv4] + [item.address for item in device.ipv6]:
        rt.add_route(_family(address), host_index, destination=address, dst_len=_host_bits(address))


# --- l2proxy on the link -----------------------------------------------------------------------------


def l2proxy(ctx: HostContext, rt: Rtnl, device: NetDevice, entry: dict[str, Any]) -> None:
    """Proxy entries on ``link`` for the device's addresses, each with its undo; recorded in ``entry``."""
    link = device.link or ""
    key = f"lxc.net.{device.index}.l2proxy"
    index = rt.link(link).ifindex  # first: a missing link is said as such, not as a missing sysctl
    if device.ipv4:
        _require(4, link, "forwarding", key)
    if device.ipv6:
        _require(6, link, "proxy_ndp", key)
        _require(6, link, "forwarding", key)
    entry.update(l2proxy_link=link, l2proxy_index=index, l2proxy=(), l2proxy_lo=device.type == "ipvlan")
    for address in [item.address for item in device.ipv4] + [item.address for item in device.ipv6]:
        rt.add_proxy(index, address)
        entry["l2proxy"] += (address,)
        ctx.undo.push(f"l2proxy {address} on {link}", _undo(_delete_proxy, index, address))
        if entry["l2proxy_lo"]:
            # As LXC: an l3s ipvlan's traffic for the address is passed on through a route to lo.
            rt.add_route(_family(address), LOOPBACK_INDEX, destination=address, dst_len=_host_bits(address))
            ctx.undo.push(f"route to {address} through lo", _undo(_delete_lo_route, LOOPBACK_INDEX, address))


def _undo(delete: Callable[[int, str], None], index: int, address: str) -> Callable[[], None]:
    return lambda: delete(index, address)


def _gone(err: NetlinkError) -> bool:
    return err.errno in (errno.ENOENT, errno.ESRCH, errno.ENODEV)


def _delete_proxy(index: int, address: str) -> None:
    with Rtnl() as rt:
        try:
            rt.delete_proxy(index, address)
        except NetlinkError as err:
            if not _gone(err):  # the link went, and its entries with it
                raise


def _delete_lo_route(_index: int, address: str) -> None:
    with Rtnl() as rt:
        try:
            rt.delete_route(_family(address), LOOPBACK_INDEX, address, _host_bits(address))
        except NetlinkError as err:
            if not _gone(err):
                raise


def release_l2proxy(index: int | None, addresses: tuple[str, ...], lo_routes: bool) -> None:
    """Remove recorded l2proxy entries (and lo routes) after their monitor died; gone ones are fine."""
    if index is None:
        return
    for address in addresses:
        _delete_proxy(index, address)
        if lo_routes:
            _delete_lo_route(LOOPBACK_INDEX, address)
