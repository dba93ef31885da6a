"""``lxc.idmap``: the container runs in a new user namespace whose uid/gid maps the host writes.

The rootfs is made usable by the mapped root without touching its files: the monitor clones the
rootfs as a detached mount, idmaps it with the container's user namespace (``mount_setattr`` with
``MOUNT_ATTR_IDMAP``) and hands it to the child, which attaches it as its root. A rootfs whose top
directory is already owned by the mapped root (shifted by hand) is bind-mounted as it is. A
filesystem that cannot be idmapped is reported with that reason.
"""

from __future__ import annotations

import errno
import os

from lxcframe import idmap as im
from lxcframe import syscalls
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import ContainerConfig
from lxcframe.context import ROOTFS_TREE, HostContext, Identity
from lxcframe.hooks import hookimpl


@hookimpl
def lxcframe_config_keys() -> list[KeySpec]:
    return [KeySpec("lxc.idmap", im.parse_idmap, multi=True, doc="u|g NSID HOSTID RANGE")]


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    return ["idmapped_mounts"]


@hookimpl
def lxcframe_check() -> list[object]:
    from lxcframe import subid

    return [subid.probe()]


@hookimpl
def lxcframe_validate(config: ContainerConfig) -> list[str]:
    entries = im.config_entries(config)
    if not entries:
        if os.geteuid() != 0:
            # Without a user namespace a non-root caller could mount, pivot or set up nothing.
            return [f"{config.where('lxc.uts.name')}a non-root user's container needs lxc.idmap lines "
                    "(e.g. 'u 0 FIRST COUNT' and 'g 0 FIRST COUNT' from /etc/subuid and /etc/subgid)"]
        return []
    where = config.where("lxc.idmap")
    if os.geteuid() != 0:
        from lxcframe import subid

        problems_of_user = [*subid.granted("u", entries), *subid.granted("g", entries)]
        if problems_of_user:
            return [f"{where}lxc.idmap: {p}" for p in problems_of_user]
    problems = [f"{where}lxc.idmap: {p}" for p in (*im.overlaps(entries), *im.too_many(entries))]
    for kind, name in (("u", "uid"), ("g", "gid")):
        if not any(e.kind == kind for e in entries):
            problems.append(f"{where}lxc.idmap: a {name} map is needed as well")
    uid, gid = config.get("lxc.init.uid", 0), config.get("lxc.init.gid", 0)
    if im.host_id(entries, "u", uid) is None:
        problems.append(f"{where}lxc.init.uid {uid} is not mapped by lxc.idmap")
    if im.host_id(entries, "g", gid) is None:
        problems.append(f"{where}lxc.init.gid {gid} is not mapped by lxc.idmap")
    return problems


@hookimpl
def lxcframe_plan(config: ContainerConfig) -> Identity | None:
    entries = im.config_entries(config)
    if not entries:
        return None
    # Who the child becomes inside: root when mapped, else the init ids (an application container).
    uid = 0 if im.host_id(entries, "u", 0) is not None else config.get("lxc.init.uid", 0)
    gid = 0 if im.host_id(entries, "g", 0) is not None else config.get("lxc.init.gid", 0)
    return Identity(uid, gid)


@hookimpl
def lxcframe_clone_flags(config: ContainerConfig) -> int:
    return syscalls.CLONE_NEWUSER if config.multi.get("lxc.idmap") else 0


def _write_map(pid: int, name: str, entries: list[im.IdMapEntry]) -> None:
    if os.geteuid() != 0:
        # Only the setuid helpers may write ranges beyond the caller's own id.
        from lxcframe import subid

        subid.write_with_helper(pid, name[0], entries)
        return
    text = "".join(e.line() + "\n" for e in entries)
    try:
        with open(f"/proc/{pid}/{name}", "w") as handle:
            handle.write(text)
    except OSError as err:
        ranges = f"{len(entries)} ranges" if len(entries) > 3 else repr(text.strip())
        raise OSError(err.errno, f"the host refused the {name} {ranges}: {err.strerror}") from None


def _idmapped_tree(rootfs: str, userns_path: str) -> int:
    tree = syscalls.open_tree(syscalls.AT_FDCWD, rootfs,
                              syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC | syscalls.AT_RECURSIVE)
    try:
        userns = os.open(userns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.mount_setattr(tree, "", syscalls.AT_EMPTY_PATH | syscalls.AT_RECURSIVE,
                                   attr_set=syscalls.MOUNT_ATTR_IDMAP, userns_fd=userns)
        finally:
            os.close(userns)
    except OSError as err:
        os.close(tree)
        raise OSError(err.errno, f"cannot idmap the rootfs {rootfs} ({err.strerror}); its filesystem may not "
                      "support idmapped mounts: shift its ownership to the mapped root instead") from None
    return tree


@hookimpl
def lxcframe_child_created(ctx: HostContext, pid: int) -> None:
    config = ctx.plan.config
    entries = im.config_entries(config)
    if not entries:
        return
    _write_map(pid, "uid_map", [e for e in entries if e.kind == "u"])
    _write_map(pid, "gid_map", [e for e in entries if e.kind == "g"])
    root_uid, _ = im.container_root(config)
    owner = os.stat(ctx.plan.rootfs).st_uid
    if owner != root_uid:
        if os.geteuid() != 0:
            raise OSError(errno.EPERM, f"the rootfs {ctx.plan.rootfs} belongs to uid {owner}, not to the container's "
                          f"root (host uid {root_uid}), and only root may idmap a mount: create the container "
                          "as this user, whose templates give the rootfs to the container's root")
        tree = _idmapped_tree(ctx.plan.rootfs, f"/proc/{pid}/ns/user")
        ctx.handover.send_fd(ROOTFS_TREE, tree)
        ctx.undo.push("idmapped rootfs tree", lambda: _close_unsent(ctx))


def _close_unsent(ctx: HostContext) -> None:
    # Sent (and closed) at the ``created`` barrier, unless the start failed before it.
    fd = ctx.handover.take_back_fd(ROOTFS_TREE)
    if fd is not None:
        os.close(fd)
