"""Delegation: hand an unprivileged container's cgroup to its root, so it can manage what is below.

The container's root (the host ids ``lxcframe.idmap.container_root`` gives) gets the cgroup where
init lives (mode 0775) and the files that moving processes and creating sub-cgroups need (0664):
v1 ``tasks`` and ``cgroup.procs``; v2 the kernel's own list in ``/sys/kernel/cgroup/delegate``, or
where that is missing ``cgroup.procs``, ``cgroup.threads`` and ``cgroup.subtree_control``. The
limits stay root's: they are files of the cgroup, not listed here.
"""

from __future__ import annotations

import os

from lxcframe.plugins.cgroup.layout import V1

KERNEL_DELEGATE_LIST = "/sys/kernel/cgroup/delegate"
V1_FILES = ("tasks", "cgroup.procs")
V2_FALLBACK_FILES = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control")


def v2_files() -> tuple[str, ...]:
    try:
        with open(KERNEL_DELEGATE_LIST, encoding="ascii") as handle:
            names = tuple(handle.read().split())
    except OSError:
        return V2_FALLBACK_FILES
    return names or V2_FALLBACK_FILES


def delegate(kind: str, directory: str, uid: int, gid: int) -> list[str]:
    """Give ``directory`` and its delegation files to ``uid:gid``; returns the files changed."""
    os.chown(directory, uid, gid)
    os.chmod(directory, 0o775)
    changed = [directory]
    for name in V1_FILES if kind == V1 else v2_files():
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue  # e.g. memory.oom.group without the memory controller
        os.chown(path, uid, gid)
        os.chmod(path, 0o664)
        changed.append(path)
    return changed
