"""Network namespaces: ``lxc.net.<N>.*`` devices, a netns id per container, addresses read from the host.

* Types ``empty`` (own netns, lo up), ``none`` (the host's netns: CLONE_NEWNET is taken out of the
  plan), ``veth`` (bridged or routed), ``macvlan``, ``ipvlan``, ``vlan`` and ``phys``; devices are created
  by the monitor and configured by the child (:mod:`.host`, :mod:`.child`), every host change with its
  undo; host routes and neighbour proxies (veth routes, router mode, l2proxy) in :mod:`.routing`.
* The container's netns gets an id at start (RTM_NEWNSID, kernel-chosen), recorded in the state file;
  it goes when the namespace dies (Linux has no RTM_DELNSID request), which the end of a stop waits for.
* Devices, addresses and routes are configured through pyroute2 (:mod:`.iproute`), each process making
  its own ``IPRoute`` after the fork that made the container's child. The netns id is pyroute2's
  ``nsidmsg`` on a plain socket and lo goes up by ioctl (:mod:`.nsid`, :func:`.child.loopback_up`), so a
  container with no device never imports pyroute2's whole package (:mod:`.pyroute2_import`).
* ``get_ips``/``get_interfaces``/``info`` (and so ``ls --fancy``) read links and addresses with
  target-netnsid dumps on a strict-check raw socket (:mod:`.inspect` on :mod:`.rawlink`), reached
  through this plugin's hooks: with the plugin disabled, ``Container.get_ips`` says so.
* ``lxcframe check`` lists the kernel's netlink strict checking, netns ids and target-netnsid dumps
  (:mod:`.probes`).

This module is imported by every command: it imports nothing heavy, and no netlink code, at import.
"""

from __future__ import annotations

from typing import Any

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext, HostContext, StartPlan
from lxcframe.hooks import hookimpl

PLUGIN = "netns"


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    from lxcframe.plugins.netns.config import config_keys

    return config_keys()


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    # LXC 5.0's names for what is here: 'dev' gateways, lxc.net.<N>.mtu on phys and macvlan, veth routes
    # and router mode, ipvlan devices, l2proxy.
    return ["network_gateway_device_route", "network_phys_macvlan_mtu", "network_veth_routes", "network_veth_router",
            "network_ipvlan", "network_l2proxy"]


@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    from lxcframe.plugins.netns.config import problems

    return problems(config)


@hookimpl
def lxcframe_clone_flags_remove(config: ContainerConfig) -> int:
    from lxcframe.plugins.netns.config import shares_host_netns

    return syscalls.CLONE_NEWNET if shares_host_netns(config) else 0


@hookimpl
def lxcframe_check() -> list[object]:
    from lxcframe.plugins.netns.probes import all_probes

    return list(all_probes())


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> object:
    from lxcframe.plugins.netns.config import NetPart, devices

    return NetPart(devices(config))


@hookimpl
def lxcframe_preload(plan: StartPlan | None) -> None:
    # The supervisor forks every daemon monitor. Every start with a netns of its own needs pyroute2's
    # message class for its id (~5 ms); a start that configures devices, the whole package (~150 ms
    # and ~12 MB, which monitors that never use it would otherwise share and pay for in PSS).
    import lxcframe.plugins.netns.child  # noqa: F401
    from lxcframe.plugins.netns.nsid import message_class

    message_class()
    if plan is not None and _configures_devices(plan):
        from lxcframe.plugins.netns.iproute import warm_up

        warm_up()


@hookimpl
def lxcframe_pre_start(ctx: HostContext) -> None:
    # Import the network stages' modules before the monitor forks the child, so that the child, which
    # the monitor waits for at each barrier, imports none of them itself: its own (lo's ioctl) always,
    # pyroute2's package (no socket, no thread: only modules) when devices are configured inside. A
    # no-op in a monitor forked from the supervisor, which preloaded them for this plan.
    if not ctx.plan.clone_flags & syscalls.CLONE_NEWNET:
        return
    import lxcframe.plugins.netns.child  # noqa: F401

    if _configures_devices(ctx.plan):
        from lxcframe.plugins.netns.iproute import warm_up

        warm_up()


def _configures_devices(plan: StartPlan) -> bool:
    """Whether the start makes or moves a device (not only its own netns with lo, or none)."""
    from lxcframe.plugins.netns.config import NetPart

    part = plan.part_or_none(NetPart)
    return bool(plan.clone_flags & syscalls.CLONE_NEWNET) and part is not None and any(
        device.type not in ("empty", "none") for device in part.devices)


# First of the network stage (lxcframe.stages.PLUGIN_ORDER), so that its release of the namespace is
# undone last: whatever else holds the namespace (e.g. descriptors for stop hooks) has let go by then.
@hookimpl
def lxcframe_setup_network(ctx: HostContext, pid: int) -> None:
    if not ctx.plan.clone_flags & syscalls.CLONE_NEWNET:
        from lxcframe.plugins.netns.records import NetnsRecord

        ctx.state_records.put(NetnsRecord(shared=True))
        return
    from lxcframe.plugins.netns.host import setup_network

    setup_network(ctx, pid)


@hookimpl
def lxcframe_child_network(ctx: ChildContext) -> None:
    if not ctx.plan.clone_flags & syscalls.CLONE_NEWNET:
        return
    from lxcframe.plugins.netns.child import NetInside, configure

    handed = ctx.received.message(NetInside)
    configure(list(handed.devices) if handed is not None else [])


@hookimpl
def lxcframe_info(state: Any) -> dict[str, object]:
    if not state.init_pid:
        return {}
    from lxcframe.plugins.netns.inspect import NetnsRef, summary

    try:
        return summary(NetnsRef.from_state(state))
    except OSError:
        return {}  # stopping under our feet: info shows what it still can


@hookimpl
def lxcframe_get_ips(state: Any, interface: str | None, family: str | None, scope: int | None) -> tuple[str, ...]:
    from lxcframe.plugins.netns.inspect import NetnsRef, get_ips

    return get_ips(NetnsRef.from_state(state), interface, family, scope)


@hookimpl
def lxcframe_get_interfaces(state: Any) -> tuple[str, ...]:
    from lxcframe.plugins.netns.inspect import NetnsRef, get_interfaces

    return get_interfaces(NetnsRef.from_state(state))


@hookimpl
def lxcframe_move_interface(state: Any, name: str, new_name: str | None, into: bool) -> bool:
    from lxcframe.plugins.netns import interfaces

    (interfaces.move_in if into else interfaces.move_out)(state.init_pid, name, new_name)
    return True


@hookimpl
def lxcframe_cleanup(state: Any, ctx: Any) -> None:
    from lxcframe.plugins.netns.records import NetnsRecord

    record = state.record(NetnsRecord)
    if record is not None and not record.shared:
        from lxcframe.plugins.netns.host import PIN, cleanup

        if ctx is None:
            cleanup(record)
        else:
            cleanup(record, ctx.plan, ctx.log, ctx.kept.pop(PIN, None))
