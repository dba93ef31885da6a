"""The builtin plugins, listed explicitly (they are also in the ``lxcframe.plugins`` entry-point group).

A plugin is a module whose functions are marked with :data:`lxcframe.hooks.hookimpl`; it is known
by its entry-point name, which is the name used to disable it.
"""

from __future__ import annotations

#: entry-point name -> module, in the order they are registered.
BUILTIN_PLUGINS: dict[str, str] = {
    "core": "lxcframe.plugins.core",
    "templates": "lxcframe.plugins.templates",
    "mounts": "lxcframe.plugins.mounts",
    "sysfs": "lxcframe.plugins.sysfs",
    "devices": "lxcframe.plugins.devices",
    "caps": "lxcframe.plugins.caps",
    "apparmor": "lxcframe.plugins.apparmor",
    "cgroup1": "lxcframe.plugins.cgroup1",
    "cgroup2": "lxcframe.plugins.cgroup2",
    "idmap": "lxcframe.plugins.idmap",
    "hooks": "lxcframe.plugins.hooks",
    "keyring": "lxcframe.plugins.keyring",
    "seccomp": "lxcframe.plugins.seccomp",
    "mount-injection": "lxcframe.plugins.mount_injection",
    "netns": "lxcframe.plugins.netns",
    "prlimit": "lxcframe.plugins.prlimit",
    "sysctl": "lxcframe.plugins.sysctl",
    "procfs": "lxcframe.plugins.procfs",
    "console": "lxcframe.plugins.console",
}

#: Plugins without which no container can run; they refuse to be disabled.
ESSENTIAL_PLUGINS: frozenset[str] = frozenset({"core"})
