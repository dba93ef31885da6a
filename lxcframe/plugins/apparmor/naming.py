"""Names and places of a container's generated AppArmor profile: profile, policy namespace, label, file.

The names follow LXC's, so that a profile loaded by one runtime is recognisable to the other's users:
``lxc-<NAME>_<<LXCPATH>>`` for the profile, the same with ``/`` turned into ``-`` for the policy
namespace and the file name (one name per container *and* lxcpath: two containers called ``c1`` in
different lxcpaths must not share a parser cache entry).
"""

from __future__ import annotations

import os

import attrs

#: AppArmor refuses names longer than this; the 7 accounts for what the kernel adds around a
#: namespace name (``:`` … ``://``) when the label is stacked.
_NAME_LIMIT = 253
_NAME_OVERHEAD = 7

_FNV64_OFFSET_BASIS = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF

#: Where securityfs lists AppArmor policy namespaces, relative to the sysfs root.
POLICY_NAMESPACES = "kernel/security/apparmor/policy/namespaces"


def fnv1a_64(data: bytes) -> int:
    value = _FNV64_OFFSET_BASIS
    for byte in data:
        value = ((value ^ byte) * _FNV64_PRIME) & _MASK64
    return value


def shorten(name: str) -> str:
    """``name``, or the 16 hex digits of its FNV-1a-64 hash when it would be too long for the kernel."""
    if len(name.encode()) + _NAME_OVERHEAD > _NAME_LIMIT:
        return f"{fnv1a_64(name.encode()):016x}"
    return name


@attrs.frozen
class ProfileNames:
    """Every name derived from one container's name and lxcpath."""

    #: The profile's own name, as written in the profile and given to ``changeprofile``.
    profile: str
    #: The policy namespace name, also the profile's file name.
    namespace: str
    #: ``LXCPATH/NAME/apparmor``: where the profile file lives.
    directory: str

    @property
    def file(self) -> str:
        return os.path.join(self.directory, self.namespace)

    def label(self, stacked_namespace: bool) -> str:
        """The label the container's init changes to; with a policy namespace, stacked onto it."""
        if stacked_namespace:
            return f"{self.profile}//&:{self.namespace}:"
        return self.profile

    def namespace_dir(self, sysfs_root: str) -> str:
        return os.path.join(sysfs_root, POLICY_NAMESPACES, self.namespace)


def profile_names(name: str, lxcpath: str) -> ProfileNames:
    profile = shorten(f"lxc-{name}_<{lxcpath}>")
    # A hashed name has no slash; the replacement only ever applies to the readable form.
    namespace = profile.replace("/", "-")
    return ProfileNames(profile, namespace, os.path.join(lxcpath, name, "apparmor"))
