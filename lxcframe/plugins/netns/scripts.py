"""``lxc.net.<N>.script.up`` / ``script.down``, run on the host with LXC's arguments and environment.

LXC builds ``exec SCRIPT NAME net up TYPE LINK HOSTIF`` as one shell line (hook version 0; version 1
drops ``NAME net up``), so an empty LINK simply vanishes between the spaces: a veth without a link
gets ``NAME net up veth vethXXXXXX``. The same line is built here.
"""

from __future__ import annotations

from typing import Any

from lxcframe.context import StartPlan
from lxcframe.plugins.netns.config import NetDevice


def net_script_args(device: NetDevice, host_name: str | None) -> tuple[str, ...]:
    """LXC's words after the hook name: the type, the link, and a veth's host-side name."""
    if device.type == "empty":
        return ("empty",)
    if device.type == "veth":
        return ("veth", device.link or "", host_name or "")
    return (device.type, device.link or "")


def run_net_script(plan: StartPlan, device: NetDevice, hook: str, host_name: str | None, log: Any) -> None:
    """Run the device's ``script.<hook>``; a non-zero exit raises (and so fails a start)."""
    from lxcframe.plugins.hooks import hook_environment, run_script

    script = device.script_up if hook == "up" else device.script_down
    if not script:
        return
    config = plan.config
    version = str(config.get("lxc.hook.version", "0"))
    args = net_script_args(device, host_name)
    words = [script, *((plan.name, "net", hook) if version == "0" else ()), *args]
    command = "exec " + " ".join(word for word in words if word)
    env = hook_environment(plan.name, config, plan.rootfs_mount)
    env.update({"LXC_HOOK_TYPE": hook, "LXC_HOOK_SECTION": "net", "LXC_NET_TYPE": args[0]})
    if device.type in ("veth", "macvlan", "ipvlan", "vlan", "phys"):
        env["LXC_NET_PARENT"] = device.link or ""
    if device.type == "veth":
        env["LXC_NET_PEER"] = host_name or ""
    run_script(command, env, log, f"lxc.net.{device.index}.script.{hook} {script!r}", "network script output",
               script=script)
