"""The monitor's half of the network stage: pin the container's netns, give it an id, bring devices in.

Every device gets its container-side name while it enters the namespace (a veth peer and a macvlan are
created directly inside it, a phys device is moved and renamed in one request), so the host always
knows what it handed over. Configuration inside (addresses, routes, up) is the child's job: see
:mod:`lxcframe.plugins.netns.child`.

Undo order (last pushed runs first): device undos, then the release of the pinned namespace. The pin
keeps the namespace alive after init died, so a phys device can still be moved back under its own name:
if the namespace died first, the kernel would return it to the host under its container-side name
(a veth would even be destroyed).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import string
from typing import Any

import attrs

from lxcframe.context import HostContext
from lxcframe.plugins.netns import routing
from lxcframe.plugins.netns.child import Inside, NetInside
from lxcframe.plugins.netns.config import NetDevice, NetPart, container_names
from lxcframe.plugins.netns.iproute import LOOPBACK_INDEX, RT_SCOPE_UNIVERSE, Link, NetlinkError, Rtnl
from lxcframe.plugins.netns.nsid import assign_nsid, wait_nsid_released
from lxcframe.plugins.netns.records import DeviceRecord, NetnsRecord
from lxcframe.plugins.netns.scripts import run_net_script

PLUGIN = "netns"
#: The name in ``ctx.kept`` of the container's network namespace, kept while it has phys devices.
PIN = "netns:pin"
#: How long the end of a container waits for the kernel to announce that its netns id is gone.
NSID_RELEASE_TIMEOUT = 2.0
_ALNUM = string.ascii_letters + string.digits


def setup_network(ctx: HostContext, pid: int) -> None:
    devs = ctx.plan.part(NetPart).devices
    names = container_names(devs)
    # Filled in as devices are made (the undos read these same dicts); saved as a NetnsRecord.
    record: dict[str, Any] = {"nsid": None, "devices": []}
    pin = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    if any(device.type == "phys" for device in devs):
        # Whoever ends the container gives phys devices back from the namespace before it dies, as the
        # undo below does: a server's worker gets the pin through ctx.kept.
        ctx.kept[PIN] = pin
    ctx.undo.push("the container's network namespace and its id", lambda: _release_netns(ctx, pin, record))
    inside: list[Inside] = []
    try:
        try:
            # The id is assigned in the monitor's namespace, the host's: valid for readers there. A
            # non-root monitor may not (CAP_NET_ADMIN of the host's): an expected absence, not a warning.
            if os.geteuid() == 0:
                record["nsid"] = assign_nsid(pin)
        except OSError as err:
            # As LXC: only a warning. get_ips then reaches the namespace through init instead.
            ctx.log.warning("no netns id for the container", error=str(err))
        with contextlib.ExitStack() as stack:
            rt: Rtnl | None = None  # made by the first device that needs one: 'empty' needs none
            for device in devs:
                entry: dict[str, Any] = {"index": device.index, "type": device.type}
                record["devices"].append(entry)
                if device.type == "empty":
                    _empty(ctx, device)
                    continue
                if rt is None:
                    # This monitor's own IPRoute, made now that the child exists (the child makes its own).
                    rt = stack.enter_context(Rtnl())
                inside.append(_instantiate(ctx, rt, pin, device, names.get(device.index, ""), entry))
    finally:
        ctx.state_records.put(NetnsRecord(False, record["nsid"],
                                          tuple(DeviceRecord(**entry) for entry in record["devices"])))
    ctx.handover.send(NetInside(tuple(inside)))


def _release_netns(ctx: HostContext, pin: int, record: dict[str, Any]) -> None:
    nsid = record.get("nsid")
    ctx.kept.pop(PIN, None)
    os.close(pin)
    if nsid is None:
        return
    if not wait_nsid_released(nsid, NSID_RELEASE_TIMEOUT):
        ctx.log.warning("netns id still assigned: something else holds the container's network namespace",
                        nsid=nsid)


def _push_script_down(ctx: HostContext, device: NetDevice, host_name: str | None) -> None:
    if device.script_down:
        ctx.undo.push(f"lxc.net.{device.index}.script.down",
                      lambda: run_net_script(ctx.plan, device, "down", host_name, ctx.log))


def _empty(ctx: HostContext, device: NetDevice) -> None:
    run_net_script(ctx.plan, device, "up", None, ctx.log)
    _push_script_down(ctx, device, None)


def _instantiate(ctx: HostContext, rt: Rtnl, pin: int, device: NetDevice, name: str,
                 entry: dict[str, Any]) -> Inside:
    entry["name"] = name
    hwaddr = _fill_random(device.hwaddr)
    gateways: dict[int, str | None] = {family: _gateway(rt, device, family, gateway)
                for family, gateway in ((socket.AF_INET, device.ipv4_gateway), (socket.AF_INET6, device.ipv6_gateway))}
    if device.l2proxy:
        # Before the device, as LXC: the link's entries are undone after it (last pushed, first undone).
        routing.l2proxy(ctx, rt, device, entry)
    if device.type == "veth":
        _veth(ctx, rt, pin, device, name, entry, gateways)
    elif device.type in ("macvlan", "ipvlan", "vlan"):
        _lower_device(rt, pin, device, name)
        # No undo: the device lives in the container's namespace and goes with it.
        run_net_script(ctx.plan, device, "up", None, ctx.log)
        _push_script_down(ctx, device, None)
    elif device.type == "phys":
        _phys(ctx, rt, pin, device, name, entry, hwaddr)
    return Inside(
        name=name,
        up=device.up,
        hwaddr=hwaddr,
        mtu=device.mtu,
        ipv4=[(item.address, item.prefixlen, item.broadcast) for item in device.ipv4],
        ipv6=[(item.address, item.prefixlen) for item in device.ipv6],
        ipv4_gateway=gateways[socket.AF_INET],
        ipv6_gateway=gateways[socket.AF_INET6],
    )


#: The kernel option each device type needs, named when the kernel does not know the type.
_KERNEL_OPTION = {"macvlan": "CONFIG_MACVLAN", "ipvlan": "CONFIG_IPVLAN", "vlan": "CONFIG_VLAN_8021Q"}


def _lower_device(rt: Rtnl, pin: int, device: NetDevice, name: str) -> None:
    """A macvlan, ipvlan or vlan on ``link``, created directly inside the container's namespace."""
    lower = rt.link(device.link or "")
    try:
        if device.type == "macvlan":
            rt.create_macvlan(name, lower.ifindex, device.macvlan_mode, pin)
        elif device.type == "ipvlan":
            rt.create_ipvlan(name, lower.ifindex, device.ipvlan_mode, device.ipvlan_isolation, pin)
        else:
            rt.create_vlan(name, lower.ifindex, device.vlan_id, pin)
    except NetlinkError as err:
        if err.errno != errno.EOPNOTSUPP:
            raise
        raise NetlinkError(err.errno, f"create {device.type} {name} on {device.link}",
                           f"{err.reason or 'Unknown device type'}: this kernel has no {device.type} devices, "
                           f"{_KERNEL_OPTION[device.type]}") from None


def _fill_random(hwaddr: str | None) -> str | None:
    """Replace LXC's ``x`` digits with random ones; the result stays a unicast address."""
    if hwaddr is None or "x" not in hwaddr:
        return hwaddr
    digits = [f"{b & 0xF:x}" if c == "x" else c for c, b in zip(hwaddr, os.urandom(len(hwaddr)), strict=True)]
    first = int("".join(digits[:2]), 16) & ~1
    return f"{first:02x}" + "".join(digits[2:])


def _gateway(rt: Rtnl, device: NetDevice, family: int, gateway: str | None) -> str | None:
    if gateway != "auto":
        return gateway
    # 'auto': the link's (a bridge's) own global address of that family, as LXC.
    link = rt.link(device.link or "")
    for address in rt.addresses(family):
        if address.ifindex == link.ifindex and address.scope == RT_SCOPE_UNIVERSE:
            return address.address
    version = 4 if family == socket.AF_INET else 6
    raise RuntimeError(f"lxc.net.{device.index}.ipv{version}.gateway = auto: {device.link} has no global "
                       f"IPv{version} address")


# --- veth ------------------------------------------------------------------------------------------


def _veth(ctx: HostContext, rt: Rtnl, pin: int, device: NetDevice, name: str, entry: dict[str, Any],
          gateways: dict[int, str | None]) -> None:
    upper = rt.link(device.link) if device.link else None
    mtu = device.mtu if device.mtu is not None else (upper.mtu if upper is not None else None)
    host = _create_pair(rt, device.veth_pair, name, pin, mtu)
    link = rt.link(host)
    entry.update(host=host, host_index=link.ifindex)
    # Its routes, proxy entries and sysctls (router mode, veth routes) go with it.
    ctx.undo.push(f"veth {host}", lambda: _delete_host_end(host, link.ifindex))
    if upper is not None and device.veth_mode == "bridge":
        # As LXC: a MAC starting with fe is never the lowest, so the bridge keeps its own address.
        rt.set_link(link.ifindex, hwaddr="fe" + link.address[2:], what=f"set the MAC of {host}")
        rt.set_link(link.ifindex, master=upper.ifindex, what=f"attach {host} to {device.link}")
    rt.set_link(link.ifindex, up=True, what=f"bring {host} up")
    routing.veth_routes(rt, device, link.ifindex)
    if device.veth_mode == "router":
        routing.router(rt, device, host, link.ifindex, gateways)
    run_net_script(ctx.plan, device, "up", host, ctx.log)
    _push_script_down(ctx, device, host)


def _create_pair(rt: Rtnl, wanted: str | None, peer: str, pin: int, mtu: int | None) -> str:
    for _attempt in range(8):
        host = wanted or "veth" + "".join(_ALNUM[b % len(_ALNUM)] for b in os.urandom(6))
        try:
            rt.create_veth(host, peer, pin, mtu=mtu)
            return host
        except NetlinkError as err:
            if err.errno != errno.EEXIST or wanted:
                raise
    raise RuntimeError("no free name for a veth's host end")


def _delete_host_end(host: str, index: int) -> None:
    with Rtnl() as rt:
        try:
            link = rt.link(host)
            if link.ifindex == index:  # not a namesake made after ours went
                rt.delete_link(index, what=f"delete {host}")
        except NetlinkError as err:
            if err.errno != errno.ENODEV:  # gone with the namespace already
                raise


# --- phys ------------------------------------------------------------------------------------------


def _phys(ctx: HostContext, rt: Rtnl, pin: int, device: NetDevice, name: str, entry: dict[str, Any],
          hwaddr: str | None) -> None:
    original = rt.link(device.link or "")
    entry.update(link=original.name, host_index=original.ifindex, mtu=original.mtu, hwaddr=original.address)
    run_net_script(ctx.plan, device, "up", None, ctx.log)
    _push_script_down(ctx, device, None)
    # Pushed before the move: a move that half-succeeded (moved, not renamed) is still undone.
    ctx.undo.push(f"phys {original.name}", lambda: return_phys(pin, entry, restore=_restore(device)))
    rt.set_link(original.ifindex, name=name, ns_fd=pin, what=f"move {original.name} into the container")
    with Rtnl(ns_fd=pin) as inner:
        entry["inside_index"] = inner.link(name).ifindex
    entry["expect_hwaddr"] = hwaddr or original.address


def _restore(device: NetDevice) -> tuple[str, ...]:
    return tuple(what for what, value in (("mtu", device.mtu), ("hwaddr", device.hwaddr)) if value is not None)


def return_phys(pin: int, entry: dict[str, Any], restore: tuple[str, ...] = ()) -> None:
    """Move a phys device from the pinned namespace back to ours under its own name (and MTU, MAC)."""
    with Rtnl(ns_fd=pin) as inner:
        found = _find_inside(inner, entry)
        if found is None:
            return  # never got there, or already back
        host_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            inner.set_link(found.ifindex, name=entry["link"], ns_fd=host_ns,
                          what=f"move {found.name} back to the host as {entry['link']}")
        finally:
            os.close(host_ns)
    _restore_attributes(entry, restore)


def _find_inside(inner: Rtnl, entry: dict[str, Any]) -> Link | None:
    links = inner.links()
    for match in (lambda lk: lk.name == entry.get("name"), lambda lk: lk.ifindex == entry.get("inside_index"),
                  lambda lk: lk.name == entry.get("link")):
        for link in links:
            if link.ifindex != LOOPBACK_INDEX and match(link):
                return link
    return None


def _restore_attributes(entry: dict[str, Any], restore: tuple[str, ...]) -> None:
    if not restore:
        return
    with Rtnl() as rt:
        link = rt.link(entry["link"])
        rt.set_link(link.ifindex, mtu=entry["mtu"] if "mtu" in restore else None,
                      hwaddr=entry["hwaddr"] if "hwaddr" in restore else None,
                      what=f"restore the MTU/MAC of {entry['link']}")


# --- after a monitor died ----------------------------------------------------------------------------


def cleanup(record: NetnsRecord, plan: Any = None, log: Any = None, pin: int | None = None) -> None:
    """Release what a start recorded, once its monitor is gone: host veth ends; phys devices the kernel
    returned renamed. With the ``plan`` the container started with (the worker a server forked to end
    it has it; a dead monitor's next command does not), first each ``lxc.net.N.script.down``, as the
    monitor's undo runs it, and afterwards the wait for the netns id to be released. With the ``pin``
    of the namespace (kept for phys devices) they are moved back before it dies, as the undo does.

    The namespace died with the monitor's pin and init, so a phys device is back on the host, under its
    container-side name (or ``dev<index>`` if that name was taken): give it its own name again.
    """
    problems: list[str] = []
    if plan is not None:
        hosts = {entry.index: entry.host for entry in record.devices}
        for device in reversed(plan.part(NetPart).devices):
            try:
                run_net_script(plan, device, "down", hosts.get(device.index), log)
            except Exception as err:  # as an undo would: said, and the rest released all the same
                problems.append(f"undo lxc.net.{device.index}.script.down: {err}")  # as the undo step says it
    if pin is not None:
        devices = {device.index: device for device in plan.part(NetPart).devices} if plan is not None else {}
        try:
            for entry in record.devices:
                if entry.type == "phys" and entry.link:
                    device = devices.get(entry.index)
                    try:
                        return_phys(pin, attrs.asdict(entry), restore=_restore(device) if device else ())
                    except OSError as err:
                        problems.append(f"undo phys {entry.link}: {err}")
        finally:
            os.close(pin)
    for entry in record.devices:
        try:
            routing.release_l2proxy(entry.l2proxy_index, entry.l2proxy, entry.l2proxy_lo)
            if entry.type == "veth" and entry.host and entry.host_index is not None:
                _delete_host_end(entry.host, entry.host_index)
            elif entry.type == "phys" and entry.link:
                _rename_returned(entry)
        except OSError as err:
            problems.append(str(err))
    if plan is not None and record.nsid is not None and not wait_nsid_released(record.nsid, NSID_RELEASE_TIMEOUT):
        # As the undo says it: only a warning, the namespace is someone else's to let go.
        log.warning("netns id still assigned: something else holds the container's network namespace",
                    nsid=record.nsid)
    if problems:
        raise OSError(errno.EIO, "; ".join(problems))


def _rename_returned(entry: DeviceRecord) -> None:
    with Rtnl() as rt:
        links = rt.links()
        if any(link.name == entry.link for link in links):
            return
        candidates = (entry.name, f"dev{entry.inside_index}", f"dev{entry.host_index}")
        for link in links:
            if link.name in candidates and link.address == entry.expect_hwaddr:
                with contextlib.suppress(NetlinkError):
                    rt.set_link(link.ifindex, up=False, what=f"bring {link.name} down")
                rt.set_link(link.ifindex, name=entry.link,
                              what=f"rename {link.name} back to {entry.link}")
                return
