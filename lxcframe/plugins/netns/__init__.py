"""Network namespaces: ``lxc.net.<N>.*`` devices, a netns id per container, addresses read from the host.

* Types ``empty`` (own netns, lo up), ``none`` (the host's netns: CLONE_NEWNET is taken out of the
  plan), ``veth``, ``macvlan`` and ``phys``; devices are created by the monitor and configured by the
  child (:mod:`.host`, :mod:`.child`), every host change with its undo.
* The container's netns gets an id at start (RTM_NEWNSID, kernel-chosen), recorded in the state file;
  it goes when the namespace dies (Linux has no RTM_DELNSID request), which the end of a stop waits for.
* ``get_ips``/``get_interfaces``/``info`` read links and addresses with target-netnsid dumps on a
  strict-check socket (:mod:`lxcframe.net.inspect`).

This module is imported by every command: it imports nothing heavy, and no netlink code, at import.
"""

from __future__ import annotations

from typing import Any

from lxcframe import syscalls
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ChildContext, HostContext
from lxcframe.hooks import hookimpl

PLUGIN = "netns"


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    from lxcframe.plugins.netns.config import config_keys

    return config_keys()


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    # LXC 5.0's names for what is here: 'dev' gateways, and lxc.net.<N>.mtu on phys and macvlan.
    return ["network_gateway_device_route", "network_phys_macvlan_mtu"]


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
    from lxcframe.net.inspect import probe
    from lxcframe.probe import Probe

    # Supported: get_ips and info read containers by netns id; otherwise they use the slower fallback.
    supported, detail = probe()
    return [Probe("netns:target-netnsid", supported, detail)]


# Before other plugins' network hooks, so that its release of the namespace is undone last: whatever
# else holds the namespace (e.g. descriptors for stop hooks) has let go by then.
@hookimpl(tryfirst=True)
def lxcframe_setup_network(ctx: HostContext, pid: int) -> None:
    if not ctx.plan.clone_flags & syscalls.CLONE_NEWNET:
        ctx.records[PLUGIN] = {"shared": True}
        return
    from lxcframe.plugins.netns.host import setup_network

    setup_network(ctx, pid)


@hookimpl
def lxcframe_child_network(ctx: ChildContext) -> None:
    if not ctx.plan.clone_flags & syscalls.CLONE_NEWNET:
        return
    from lxcframe.plugins.netns.child import Inside, configure

    configure([Inside.from_json(item) for item in ctx.from_host.get(PLUGIN, {}).get("devices", ())])


@hookimpl
def lxcframe_info(state: Any) -> dict[str, object]:
    if not state.init_pid:
        return {}
    from lxcframe.net.inspect import NetnsRef, summary

    try:
        return summary(NetnsRef.from_state(state))
    except OSError:
        return {}  # stopping under our feet: info shows what it still can


@hookimpl
def lxcframe_cleanup(state: Any) -> None:
    record = state.plugins.get(PLUGIN)
    if record and not record.get("shared"):
        from lxcframe.plugins.netns.host import cleanup

        cleanup(record)
