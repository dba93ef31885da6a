"""The text of a container's generated AppArmor profile.

One base section, then a section per host feature and per container setting, in a fixed order (a
reader comparing two profiles finds the same thing at the same place), then the user's raw lines:

1. header: ``#include <tunables/global>`` and the profile line;
2. ``### Base profile`` — what every container may and may not do;
3. ``### Feature: unix`` — unix socket mediation, when the parser knows the rule (>= 2.10.95);
4. ``### Feature: cgroup namespace`` — cgroup mounts inside the container's cgroup namespace;
5. ``### Feature: apparmor stacking`` (the container gets its own policy namespace and may load
   profiles there) or ``### Feature: apparmor stacking (not present)`` (securityfs out of reach);
6. ``### Configuration: nesting`` (``lxc.apparmor.allow_nesting``);
7. ``### Configuration: unprivileged container`` (a user namespace, or a runtime that is itself
   unprivileged);
8. ``lxc.apparmor.raw`` lines, verbatim; 9. the closing brace.
"""

from __future__ import annotations

import itertools

import attrs

from lxcframe.plugins.apparmor.globs import complement_globs
from lxcframe.plugins.apparmor.naming import ProfileNames


@attrs.frozen
class ProfileFeatures:
    """What decides the profile's sections: host facts and the container's settings."""

    #: The parser understands ``unix`` rules.
    unix: bool
    #: The kernel has cgroup namespaces.
    cgroupns: bool
    #: The container gets its own policy namespace (kernel can stack, and we are not stacked already).
    stacking: bool
    nesting: bool
    #: The container has an idmap, or this runtime runs unprivileged.
    unprivileged: bool
    raw: tuple[str, ...] = ()


# Write access that lets a container reach the host: /proc/sys and /sys are writable only where the
# kernel namespaces what is written (IPC limits, hostnames, network, the container's own cgroups).
_PROC_SYS_WRITABLE = ("kernel/shm*", "kernel/sem*", "kernel/msg*", "kernel/hostname", "kernel/domainname", "net/**")
# /sys/k* is left to the stacking sections, which know whether securityfs may be used.
_SYS_WRITABLE = ("fs/cgroup/**", "devices/virtual/net/**", "class/net/**", "k**")
# Bind and move mounts must not put anything over /proc, /sys or /dev (which would hide the
# container's view of the kernel), nor over the nesting helpers in /dev/.lxc.
_MOUNT_PROTECTED = ("proc", "sys", "dev/.lxc")
_REMOUNT_FLAGS = ("nosuid", "noexec", "nodev")
_PROPAGATIONS = ("slave", "shared", "private", "unbindable")


def _lines(*lines: str) -> list[str]:
    # Indented by two; a blank line stays empty.
    return [f"  {line}".rstrip() for line in lines]


def _header(names: ProfileNames) -> list[str]:
    return ["#include <tunables/global>",
            f'profile "{names.profile}" flags=(attach_disconnected,mediate_deleted) {{']


def _ro_bind_remounts() -> list[str]:
    # A read-only bind remount cannot widen access, whatever extra flags come with it, and systemd
    # (PrivateTmp=, ProtectSystem=…) needs them with any subset of nosuid/noexec/nodev.
    subsets = (c for size in range(len(_REMOUNT_FLAGS) + 1) for c in itertools.combinations(_REMOUNT_FLAGS, size))
    return [f"mount options=({','.join(('ro', 'remount', 'bind', *subset))})," for subset in subsets]


def _base() -> list[str]:
    protected = complement_globs("", _MOUNT_PROTECTED)
    denied_writes = (complement_globs("/proc/sys", _PROC_SYS_WRITABLE)
                     + complement_globs("/sys", _SYS_WRITABLE))
    return _lines(
        "### Base profile",
        "capability,",
        "dbus,",
        "file,",
        "network,",
        "umount,",
        "",
        "# Signals may come from anywhere; they may be sent only within the container.",
        "signal (receive),",
        "signal peer=@{profile_name},",
        "",
        "# Others may read our /proc entries and trace us (they need that right themselves);",
        "# administrators can narrow this with 'deny ptrace (readby)' or '(tracedby)'.",
        "ptrace (readby),",
        "ptrace (tracedby),",
        "ptrace peer=@{profile_name},",
        "",
        "# Init remounts / read-only at shutdown; it is refused, quietly.",
        "deny mount options=(ro, remount) -> /,",
        "deny mount options=(ro, remount, silent) -> /,",
        "",
        "# Filesystems that expose nothing of the host, anywhere.",
        "mount fstype=tmpfs,",
        "mount fstype=hugetlbfs,",
        "mount fstype=mqueue,",
        "mount fstype=fuse,",
        "mount fstype=fuse.*,",
        "",
        "# Kernel filesystems only at their usual places (writes are restricted below).",
        "mount fstype=proc -> /proc/,",
        "mount fstype=sysfs -> /sys/,",
        "mount fstype=binfmt_misc -> /proc/sys/fs/binfmt_misc/,",
        "mount fstype=efivarfs -> /sys/firmware/efi/efivars/,",
        "mount fstype=fusectl -> /sys/fs/fuse/connections/,",
        "mount fstype=securityfs -> /sys/kernel/security/,",
        "mount fstype=debugfs -> /sys/kernel/debug/,",
        "deny mount fstype=debugfs -> /var/lib/ureadahead/debugfs/,",
        "",
        "# The remounts container inits do on /sys and /sys/fs/cgroup.",
        "mount options=(rw, nosuid, nodev, noexec, remount) -> /sys/,",
        "mount options=(ro, nosuid, nodev, noexec, remount, strictatime) -> /sys/fs/cgroup/,",
        "",
        "# Bind and move mounts anywhere but over /proc, /sys, /dev and /dev/.lxc.",
        *(f"mount options=(rw,bind) {glob}," for glob in protected),
        *(f"mount options=(rw,move) {glob}," for glob in protected),
        "",
        "# Read-only bind remounts with any of nosuid, noexec, nodev, anywhere.",
        *_ro_bind_remounts(),
        "",
        "# Host interfaces: devices on the PCI bus, kernel memory, SysRq, EFI variables, debugfs.",
        "deny @{PROC}/bus/** wklx,",
        "deny @{PROC}/sys/fs/** wklx,",
        "deny @{PROC}/kcore rwklx,",
        "deny @{PROC}/sysrq-trigger rwklx,",
        "deny /sys/firmware/efi/efivars/** rwklx,",
        "deny /sys/kernel/debug/{,**} rwklx,",
        "",
        "# No writes in /proc/sys and /sys but where the kernel namespaces them.",
        *(f"deny {glob} wklx," for glob in denied_writes),
    )


def _unix() -> list[str]:
    return _lines(
        "",
        "### Feature: unix",
        "# Receive on unix sockets from anyone; any unix socket use among the container's processes.",
        "unix (receive),",
        "unix peer=(label=@{profile_name}),",
    )


def _cgroup_namespace() -> list[str]:
    return _lines(
        "",
        "### Feature: cgroup namespace",
        "mount fstype=cgroup -> /sys/fs/cgroup/**,",
        "mount fstype=cgroup2 -> /sys/fs/cgroup/**,",
    )


def _stacking(names: ProfileNames) -> list[str]:
    # securityfs stays writable only where AppArmor is, so the container can load its own policy
    # into its namespace (and only there: change_profile is limited to that namespace).
    return _lines(
        "",
        "### Feature: apparmor stacking",
        "# Profiles may be loaded into the container's own policy namespace.",
        *(f"deny {glob} wklx," for glob in complement_globs("/sys", ("kernel/security/apparmor/**",), within="k")),
        f'change_profile -> ":{names.namespace}:*",',
        f'change_profile -> ":{names.namespace}://*",',
    )


def _no_stacking() -> list[str]:
    return _lines(
        "",
        "### Feature: apparmor stacking (not present)",
        "deny /sys/k*{,/**} rwklx,",
    )


def _nesting(names: ProfileNames, stacking: bool) -> list[str]:
    lines = _lines(
        "",
        "### Configuration: nesting",
        "pivot_root,",
        "ptrace,",
        "signal,",
        "",
        "# The unobstructed proc and sysfs mounted for a nested runtime are for reading only.",
        "deny /dev/.lxc/proc/** rw,",
        "deny /dev/.lxc/sys/** rw,",
        "",
        "mount fstype=proc -> /usr/lib/*/lxc/**,",
        "mount fstype=sysfs -> /usr/lib/*/lxc/**,",
        "mount options=(rw,bind),",
        "mount options=(rw,rbind),",
        "mount options=(rw,make-rshared),",
        "",
        "# A nested container's read-only bind remount of proc/sys cannot be told apart from other",
        "# mounts by the parser, so every mount is allowed.",
        "mount,",
    )
    if not stacking:
        # Without a policy namespace the nested runtime can only keep this very profile.
        lines += _lines(f'change_profile -> "{names.profile}",')
    return lines


def _unprivileged() -> list[str]:
    propagation = [f"mount options=(rw,make-{r}{kind}) -> **," for kind in _PROPAGATIONS for r in ("", "r")]
    return _lines(
        "",
        "### Configuration: unprivileged container",
        "pivot_root,",
        "",
        "# Mount propagation may be changed anywhere.",
        *propagation,
        "",
        "# The user namespace already keeps these from reaching the host.",
        "mount options=(rw,bind),",
        "mount options=(rw,rbind),",
        "mount options=(ro,remount),",
    )


def render(names: ProfileNames, features: ProfileFeatures) -> str:
    """The complete profile text, ending with a newline."""
    lines = _header(names) + _base()
    if features.unix:
        lines += _unix()
    if features.cgroupns:
        lines += _cgroup_namespace()
    lines += _stacking(names) if features.stacking else _no_stacking()
    if features.nesting:
        lines += _nesting(names, features.stacking)
    if features.unprivileged:
        lines += _unprivileged()
    lines += features.raw
    lines.append("}")
    return "\n".join(lines) + "\n"


def raw_line_range(names: ProfileNames, features: ProfileFeatures) -> range:
    """The 1-based line numbers the raw lines take in :func:`render`'s text (to blame a parser error)."""
    before = render(names, attrs.evolve(features, raw=())).count("\n") - 1  # all but the closing brace
    return range(before + 1, before + 1 + len(features.raw))
