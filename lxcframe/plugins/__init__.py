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
    "cgroup": "lxcframe.plugins.cgroup",
    "idmap": "lxcframe.plugins.idmap",
    "hooks": "lxcframe.plugins.hooks",
    "keyring": "lxcframe.plugins.keyring",
    "seccomp": "lxcframe.plugins.seccomp",
    "mount-injection": "lxcframe.plugins.mount_injection",
    "netns": "lxcframe.plugins.netns",
    "namespaces": "lxcframe.plugins.namespaces",
    "prlimit": "lxcframe.plugins.prlimit",
    "sysctl": "lxcframe.plugins.sysctl",
    "procfs": "lxcframe.plugins.procfs",
    "console": "lxcframe.plugins.console",
    "autostart": "lxcframe.plugins.autostart",
    "ephemeral": "lxcframe.plugins.ephemeral",
    "oci": "lxcframe.plugins.oci",
}

#: Plugins without which no container can run; they refuse to be disabled.
ESSENTIAL_PLUGINS: frozenset[str] = frozenset({"core"})

#: Named drivers of builtin plugins, each of which can be switched off alone by ``PLUGIN.DRIVER``
#: (``-p no:cgroup.v2``, ``Plugins(disable=["cgroup.v2"])``, ``[plugins] disable``). Listed here so
#: the names are known without importing the plugin; its own registry must name the same.
BUILTIN_DRIVERS: dict[str, tuple[str, ...]] = {"cgroup": ("v1", "v2")}
