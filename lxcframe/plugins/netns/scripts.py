"""``lxc.net.<N>.script.up`` / ``script.down``, run on the host with LXC's arguments and environment.

LXC builds ``exec SCRIPT NAME net up TYPE LINK HOSTIF`` as one shell line (hook version 0; version 1
drops ``NAME net up``), so an empty LINK simply vanishes between the spaces: a veth without a link
gets ``NAME net up veth vethXXXXXX``. The same line is built here.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from lxcframe.context import DEFAULT_PATH, StartPlan
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
    from lxcframe.plugins.hooks import base_environment

    script = device.script_up if hook == "up" else device.script_down
    if not script:
        return
    config = plan.config
    version = str(config.get("lxc.hook.version", "0"))
    args = net_script_args(device, host_name)
    words = [script, *((plan.name, "net", hook) if version == "0" else ()), *args]
    command = "exec " + " ".join(word for word in words if word)
    env = {"PATH": os.environ.get("PATH", DEFAULT_PATH), **base_environment(plan.name, config, plan.rootfs_mount)}
    env.update({"LXC_HOOK_TYPE": hook, "LXC_HOOK_SECTION": "net", "LXC_NET_TYPE": args[0]})
    if device.type in ("veth", "macvlan", "phys"):
        env["LXC_NET_PARENT"] = device.link or ""
    if device.type == "veth":
        env["LXC_NET_PEER"] = host_name or ""
    result = subprocess.run(["/bin/sh", "-c", command], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, check=False)
    output = result.stdout.decode(errors="replace")
    for line in output.splitlines():
        log.debug("network script output", script=script, line=line)
    if result.returncode != 0:
        last = output.strip().splitlines()[-1] if output.strip() else "no output"
        raise RuntimeError(f"lxc.net.{device.index}.script.{hook} {script!r} exited with status "
                           f"{result.returncode}: {last}")
