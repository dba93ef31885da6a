"""What ``lxcframe check`` shows for AppArmor: each fact that decides how the plugin works here.

A row is unsupported only when something the plugin would use is missing. With AppArmor off in the
kernel the rows on mount mediation and stacking are left out: they would repeat the same cause. Whether
this runtime is itself stacked is a circumstance, not a capability, so it is told in the stacking row.
"""

from __future__ import annotations

from lxcframe.plugins.apparmor.host import HostPaths, detect_kernel, detect_parser
from lxcframe.probe import Probe


def probes(paths: HostPaths) -> list[Probe]:
    kernel = detect_kernel(paths)
    parser = detect_parser(paths)
    # Generated profiles are compiled as a config check even where the kernel has no AppArmor.
    # Without AppArmor in the kernel that check is all it does, and LXC ignores the keys as lxcframe does.
    parser_row = Probe("apparmor:parser", parser.available, parser.why, required=kernel.enabled.value)
    if not kernel.enabled.value:
        ignored = f"{kernel.enabled.why}; lxc.apparmor.* is ignored, except the mount entries of allow_nesting"
        return [Probe("apparmor:enabled", False, ignored, required=False), parser_row]
    mediation = kernel.mount_mediation.why
    if not kernel.mount_mediation.value:
        mediation += "; confined starts need lxc.apparmor.allow_incomplete = 1"
    return [
        Probe("apparmor:enabled", True, kernel.enabled.why),
        Probe("apparmor:mount_mediation", kernel.mount_mediation.value, mediation, required=False),
        parser_row,
        # Only nesting needs it.
        Probe("apparmor:stacking", kernel.can_stack.value, f"{kernel.can_stack.why}; {kernel.stacked.why}",
              required=False),
    ]
