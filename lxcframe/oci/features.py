"""``features`` and ``--version``: what this runtime takes, in runc's shape (runtime-spec features.md).

Only what the bundle translator (:mod:`lxcframe.oci.bundle`) reads is listed: a caller that probes
``features`` must not be told of mount options that would be refused.
"""

from __future__ import annotations

from typing import Any

from lxcframe.oci.store import OCI_VERSION
from lxcframe.version import __version__

#: The runtime-spec namespace types a bundle may ask for (each one lxcframe makes or joins).
NAMESPACES = ("cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts")


def features() -> dict[str, Any]:
    from lxcframe.oci.bundle_seccomp import ACTIONS, OPERATORS
    from lxcframe.oci.oci_hooks import HOOK_NAMES

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_NAMES),  # run by lxcframe.oci.oci_hooks, each at the spec's point
        "mountOptions": [],
        "linux": {
            "namespaces": list(NAMESPACES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            # The actions and operators the translator takes; no flag (linux.seccomp.flags is refused).
            "seccomp": {"enabled": True, "actions": sorted(ACTIONS), "operators": list(OPERATORS),
                        "knownFlags": [], "supportedFlags": []},
        },
        "annotations": {"io.github.lxcframe.version": __version__},
    }


def version_text() -> str:
    return f"lxcframe-oci version {__version__}\nspec: {OCI_VERSION}"
