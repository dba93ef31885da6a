"""Every key of LXC's config format, with the builtin plugin that owns (or will own) it.

Used to tell a user that a key is LXC's but no enabled plugin handles it here — rather than calling a
real LXC key unknown. A key of this table that an enabled plugin declares is simply handled by it.
"""

from __future__ import annotations

#: (key or pattern, owning builtin plugin). Patterns use the syntax of :class:`KeySpec`.
LXC_KEYS: tuple[tuple[str, str], ...] = (
    ("lxc.apparmor.*", "apparmor"),
    ("lxc.selinux.*", "selinux"),
    ("lxc.seccomp.*", "seccomp"),
    ("lxc.cgroup.relative", "cgroup1"),
    ("lxc.cgroup.dir", "cgroup1"),
    ("lxc.cgroup.dir.*", "cgroup1"),
    ("lxc.cgroup.*", "cgroup1"),
    ("lxc.cgroup2.*", "cgroup2"),
    ("lxc.net", "netns"),
    ("lxc.net.*", "netns"),
    ("lxc.idmap", "idmap"),
    ("lxc.hook.*", "hooks"),
    ("lxc.hook.version", "hooks"),
    ("lxc.keyring.session", "keyring"),
    ("lxc.console.*", "console"),
    ("lxc.tty.max", "console"),
    ("lxc.tty.dir", "console"),
    ("lxc.prlimit.*", "prlimit"),
    ("lxc.sysctl.*", "sysctl"),
    ("lxc.proc.*", "procfs"),
    ("lxc.sched.core", "cgroup1"),
    ("lxc.time.offset.boot", "timens"),
    ("lxc.time.offset.monotonic", "timens"),
    ("lxc.ephemeral", "ephemeral"),
    ("lxc.start.auto", "autostart"),
    ("lxc.start.delay", "autostart"),
    ("lxc.start.order", "autostart"),
    ("lxc.group", "autostart"),
    ("lxc.namespace.share.*", "namespaces"),
    ("lxc.namespace.clone", "core"),
    ("lxc.namespace.keep", "core"),
    ("lxc.monitor.unshare", "core"),
    ("lxc.seccomp.profile", "seccomp"),
    ("lxc.init.groups", "core"),
    ("lxc.log.syslog", "core"),
    ("lxc.rootfs.options", "core"),
    ("lxc.signal.reboot", "core"),
    ("lxc.autodev.tmpfs.size", "devices"),
)
