"""The core plugin's host probes, for ``lxcframe check``: the namespaces every container is made of
and the syscalls the core relies on. Other plugins probe what they need in their own check hook.

Imported by core's check hook only. No probe raises: a failure is ``supported=False`` with the reason.
"""

from __future__ import annotations

import os

from lxcframe import syscalls
from lxcframe.probe import Probe, describe, never_raises, read_text

# Module attributes, so that tests can point them elsewhere.
PROC_NS_DIR = "/proc/self/ns"
MAX_USER_NAMESPACES = "/proc/sys/user/max_user_namespaces"

NAMESPACES: tuple[str, ...] = ("mnt", "uts", "ipc", "user", "pid", "net", "cgroup", "time")

#: (probe name, syscalls, what they are used for and the kernel that brought them).
SYSCALLS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("openat2", ("openat2",), "RESOLVE_IN_ROOT lookups in the rootfs, kernel >= 5.6"),
    ("pidfd", ("pidfd_open", "pidfd_send_signal"), "race-free signalling, kernel >= 5.3"),
    ("clone3", ("clone3",), "clone into cgroup / with pidfd, kernel >= 5.3"),
    ("execveat", ("execveat",), "exec of the sealed init by descriptor, kernel >= 3.19"),
    ("open_tree/move_mount", ("open_tree", "move_mount"), "detached mount trees, kernel >= 5.2"),
    ("mount_setattr", ("mount_setattr",),
     "idmapped mounts, kernel >= 5.12; each filesystem must support idmapping too"),
)


def namespace_probe(ns: str) -> Probe:
    """Whether namespace type ``ns`` (a name from :data:`NAMESPACES`) exists, and for ``user`` that
    the sysctl lets new ones be made."""
    name = f"namespace:{ns}"
    path = os.path.join(PROC_NS_DIR, ns)
    try:
        link = os.readlink(path)
    except FileNotFoundError:
        return Probe(name, False, f"{path} missing: kernel built without it")
    except Exception as exc:
        return Probe(name, False, f"cannot read {path}: {describe(exc)}")
    if ns != "user":
        return Probe(name, True, f"{path} -> {link}")
    # User namespaces can be compiled in yet disabled by this sysctl.
    try:
        limit = int(read_text(MAX_USER_NAMESPACES).strip())
    except Exception as exc:
        return Probe(name, False, f"{link}, but cannot read {MAX_USER_NAMESPACES}: {describe(exc)}")
    if limit <= 0:
        return Probe(name, False, f"{link}, but disabled: {MAX_USER_NAMESPACES} = {limit}")
    return Probe(name, True, f"{path} -> {link}; max_user_namespaces = {limit}")


def syscalls_probe(name: str, calls: tuple[str, ...], purpose: str) -> Probe:
    """Whether the kernel implements every syscall of ``calls`` (probed with arguments it rejects).

    :func:`probes` runs it under :func:`~lxcframe.probe.never_raises`, named after its row."""
    missing = [call for call in calls if not syscalls.syscall_supported(call)]
    if missing:
        return Probe(name, False, f"missing: {', '.join(missing)} ({purpose})")
    return Probe(name, True, f"{', '.join(calls)} available ({purpose})")


def probes() -> list[Probe]:
    """Every probe of the core, in display order: namespaces, then syscalls."""
    return [*(namespace_probe(ns) for ns in NAMESPACES),
            *(never_raises(name)(syscalls_probe)(name, calls, purpose) for name, calls, purpose in SYSCALLS)]
