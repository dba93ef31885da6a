"""LXC's container config keys that no lxcframe plugin handles yet.

A config may carry keys written for LXC. One of these is not a typo, so it is not called unknown: the
config loads with it set aside, and a start refuses it by default (``[plugins] unhandled_keys``), as LXC
refuses what it cannot apply. The list names keys only, never a plugin: a key a builtin plugin declares
is that plugin's, and when the plugin is disabled the key is reported with its name (the plugin's own
declaration says so, see :meth:`lxcframe.plugin_manager.Plugins.key_registry`).

``docs/features.md`` lists the same keys for readers; ``tests/test_lxc_keys.py`` keeps the two equal,
checks each against liblxc's own ``lxc_config_item_is_supported`` and that no builtin declares one.
A plugin that comes to handle a key declares it, and the key leaves this list.
"""

from __future__ import annotations

#: Why such a key is not applied, in messages.
NOT_SUPPORTED_YET = "an LXC key lxcframe does not support yet (see docs/features.md)"

#: Keys and patterns (the syntax of :class:`~lxcframe.config.keys.KeySpec`), in LXC's order of topics.
UNSUPPORTED_LXC_KEYS: tuple[str, ...] = (
    # Clearing forms: an empty value drops every key below them in LXC.
    "lxc.cgroup",
    "lxc.cgroup2",
    "lxc.hook",
    "lxc.prlimit",
    "lxc.proc",
    "lxc.sysctl",
    # Security modules and seccomp notification.
    "lxc.selinux.context",
    "lxc.selinux.context.keyring",
    "lxc.seccomp.notify.cookie",
    "lxc.seccomp.notify.proxy",
    # Namespaces.
    "lxc.monitor.unshare",
)
