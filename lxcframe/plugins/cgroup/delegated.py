"""A non-root caller's cgroups: below a cgroup delegated to it, and handed to the container's root
from inside a user namespace.

The base is, per hierarchy, the top of the delegated subtree the caller runs in: its own cgroup and
each parent above it as long as the caller may create cgroups there and move processes into them
(the directory and its ``cgroup.procs`` writable: an operator's delegation, systemd's
``user@UID.service``, ``systemd-run --user --scope -p Delegate=yes``). The top, not the caller's own
cgroup: cgroup2 hands controllers down only from a cgroup without processes, and the caller's
processes are in a leaf of it. A caller in no writable cgroup gets, on a systemd host, the unified
tree's ``user@UID.service`` when that is writable; anything else is an error naming the cgroup.

The container's root gets its cgroup (:func:`.delegate.delegate`) from a process that is root of a
user namespace mapping both the caller and the container's ids, as LXC's ``chown_cgroup`` does: a
user may give away nothing outside one. The group stays the caller's: ``attach`` moves the caller's
process into the container's cgroup before it enters the user namespace, so the caller must still
write ``cgroup.procs`` (the container's root owns the directory and the files all the same).
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Sequence

from lxcframe import idmap
from lxcframe.plugins.cgroup.delegate import delegate
from lxcframe.plugins.cgroup.layout import V2, Hierarchy
from lxcframe.plugins.cgroup.naming import cgroup_in, read_proc_cgroup


def _writable(hierarchy: Hierarchy, cgroup: str) -> bool:
    directory = hierarchy.path(cgroup)
    return os.access(directory, os.W_OK | os.X_OK) and os.access(os.path.join(directory, "cgroup.procs"), os.W_OK)


def _systemd_user_service(uid: int) -> str:
    return f"/user.slice/user-{uid}.slice/user@{uid}.service"


def user_bases(hierarchies: Sequence[Hierarchy], uid: int | None = None,
               own_entries: list[tuple[str, str]] | None = None) -> dict[Hierarchy, str]:
    """The base cgroup of each hierarchy for a non-root caller (see the module's text)."""
    uid = os.geteuid() if uid is None else uid
    own_entries = own_entries if own_entries is not None else read_proc_cgroup("self")
    bases = {}
    for hierarchy in hierarchies:
        own = cgroup_in(hierarchy, own_entries)
        chosen = None
        if _writable(hierarchy, own):
            chosen = own
            while chosen != "/" and _writable(hierarchy, posixpath.dirname(chosen)):
                chosen = posixpath.dirname(chosen)
        elif hierarchy.kind == V2 and _writable(hierarchy, _systemd_user_service(uid)):
            chosen = _systemd_user_service(uid)
        if chosen is None:
            raise PermissionError(errno.EACCES, f"no cgroup delegated to uid {uid} in the {hierarchy.display} "
                                  f"hierarchy: {hierarchy.path(own)} is not writable (an operator delegates one: "
                                  "docs/architecture.md, 'Non-root users')")
        bases[hierarchy] = chosen
    return bases


def _ns_id(entries: list[idmap.IdMapEntry], kind: str, host: int) -> int:
    for entry in entries:
        if entry.kind == kind and entry.hostid <= host < entry.hostid + entry.count:
            return entry.nsid + host - entry.hostid
    raise LookupError(f"host {kind}id {host} is not mapped")


def _delegate_all(targets: list[tuple[str, str]], uid: int, gid: int) -> None:
    for kind, directory in targets:
        delegate(kind, directory, uid, gid)


def delegate_as_user(config: object, targets: list[tuple[str, str]]) -> None:
    """Give each ``(kind, directory)`` to the container's root, from inside a user namespace."""
    from lxcframe import userns_exec

    entries = idmap.config_entries(config)
    uid, _ = idmap.container_root(config)
    maps = userns_exec.with_caller(entries)
    userns_exec.run_as_root(entries, _delegate_all, targets, _ns_id(maps, "u", uid), _ns_id(maps, "g", os.getgid()))


def not_delegated(err: PermissionError) -> PermissionError:
    """A server's worker that may not join a non-root client's cgroup: the client runs in no cgroup
    delegated to it (root's error passes unchanged)."""
    if os.geteuid() == 0 or not err.filename:
        return err
    return PermissionError(errno.EACCES, f"no cgroup delegated to uid {os.geteuid()}: the caller's cgroup "
                           f"{os.path.dirname(str(err.filename))} is not writable (an operator delegates one: "
                           "docs/architecture.md, 'Non-root users')")
