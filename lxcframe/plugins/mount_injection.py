"""Mounts injected into a running container (``Container.mount`` / ``umount``), and ``shmounts``.

LXC 3.1 tunnels a mount through a shared directory (``lxc.mount.auto = shmounts:``). With the new
mount API no tunnel is needed: the source is cloned on the host as a detached tree
(``open_tree(OPEN_TREE_CLONE)``; a filesystem is first mounted in a private mount namespace and
cloned from there), then a single-threaded child enters the container's user and mount namespaces
and attaches the tree with ``move_mount``. In a user namespace the child becomes the container's
root first, so a target it creates belongs to that root (LXC's ``mount_injection_file``).

``shmounts:HOST[:CONTAINER]`` is still honoured for configs that use it: HOST is bind-mounted at
CONTAINER (default ``/dev/.lxc-mounts``) at start.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from lxcframe import syscalls
from lxcframe.context import ChildContext
from lxcframe.errors import ContainerError
from lxcframe.hooks import hookimpl
from lxcframe.plugins.mounts import MountsPart, mount_entry_in_rootfs
from lxcframe.validators import MountEntry

DEFAULT_SHMOUNTS_TARGET = "/dev/.lxc-mounts"
_BIND_ATTRS = ((syscalls.MS_RDONLY, syscalls.MOUNT_ATTR_RDONLY), (syscalls.MS_NOSUID, syscalls.MOUNT_ATTR_NOSUID),
               (syscalls.MS_NODEV, syscalls.MOUNT_ATTR_NODEV), (syscalls.MS_NOEXEC, syscalls.MOUNT_ATTR_NOEXEC))


@hookimpl
def lxcframe_api_extensions() -> list[str]:
    return ["mount_injection", "mount_injection_file"]


@hookimpl
def lxcframe_child_pre_pivot(ctx: ChildContext) -> None:
    # After the devices stage: the default target lives under /dev, which autodev replaced.
    mounts = ctx.plan.part_or_none(MountsPart)
    token = mounts.token("shmounts") if mounts is not None else None
    if token is None:
        return
    parts = token.split(":")
    host, inside = parts[1], parts[2] if len(parts) > 2 else DEFAULT_SHMOUNTS_TARGET
    mount_entry_in_rootfs(ctx, MountEntry(host, inside, "none", ("bind", "create=dir")))


# --- injection -------------------------------------------------------------------------------------


def _detached_tree(source: str, fstype: str | None, flags: int, data: str | None) -> int:
    """A detached mount of ``source`` (a clone of a path, or a new filesystem), as an fd."""
    bind = fstype in (None, "", "none") or flags & syscalls.MS_BIND
    if bind:
        recursive = syscalls.AT_RECURSIVE if flags & syscalls.MS_REC else 0
        tree = syscalls.open_tree(syscalls.AT_FDCWD, source,
                                  syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC | recursive)
        # A clone keeps the source's flags; ro, nosuid… of a bind are set on the detached tree.
        attrs = sum(attr for flag, attr in _BIND_ATTRS if flags & flag)
        if attrs:
            try:
                syscalls.mount_setattr(tree, "", syscalls.AT_EMPTY_PATH | recursive, attr_set=attrs)
            except BaseException:
                os.close(tree)
                raise
        return tree
    # A new filesystem: mount it where nobody else sees it (this child's own mount namespace) and
    # clone it from there; the clone outlives the namespace.
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    staging = tempfile.mkdtemp(prefix="lxcframe-inject-")
    try:
        syscalls.mount(source, staging, fstype, flags, data)
        return syscalls.open_tree(syscalls.AT_FDCWD, staging, syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC)
    finally:
        with contextlib.suppress(OSError):
            syscalls.umount2(staging, syscalls.MNT_DETACH)
        os.rmdir(staging)


def _enter(init_pid: int) -> None:
    """Join the container's user (as its root) and mount namespaces."""
    own_user = os.stat("/proc/self/ns/user").st_ino
    user_fd = os.open(f"/proc/{init_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    mnt_fd = os.open(f"/proc/{init_pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstat(user_fd).st_ino != own_user:
            syscalls.setns(user_fd, syscalls.CLONE_NEWUSER)
            with contextlib.suppress(OSError):  # no uid 0 in the maps: stay who we are
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
        syscalls.setns(mnt_fd, syscalls.CLONE_NEWNS)
        os.chdir("/")
    finally:
        os.close(user_fd)
        os.close(mnt_fd)


def _make_target(target: str, is_dir: bool) -> None:
    parent = os.path.dirname(target.rstrip("/")) or "/"
    os.makedirs(parent, 0o755, exist_ok=True)
    if os.path.lexists(target):
        return
    if is_dir:
        os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def _mount_in_child(request: dict[str, Any]) -> None:
    source, target = request["source"], request["target"]
    tree = _detached_tree(source, request.get("fstype"), request.get("flags", 0), request.get("data"))
    is_dir = request.get("fstype") not in (None, "", "none") or os.path.isdir(source)
    _enter(request["init_pid"])
    _make_target(target, is_dir)
    syscalls.move_mount(tree, "", syscalls.AT_FDCWD, target, syscalls.MOVE_MOUNT_F_EMPTY_PATH)


def _umount_in_child(request: dict[str, Any]) -> None:
    _enter(request["init_pid"])
    syscalls.umount2(request["target"], request.get("flags", 0))
    if request.get("remove"):
        target = request["target"]
        (os.rmdir if os.path.isdir(target) and not os.path.islink(target) else os.unlink)(target)


def _run(request: dict[str, Any]) -> None:
    """Do the request in a single-threaded child (forked, or a fresh interpreter for threaded callers)."""
    from lxcframe.launcher import single_threaded
    from lxcframe.stage_runner import describe

    if not single_threaded():
        done = subprocess.run([sys.executable, "-m", "lxcframe.plugins.mount_injection", json.dumps(request)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ContainerError(done.stderr.strip() or f"mount helper exited with {done.returncode}")
        return
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            (_mount_in_child if request["op"] == "mount" else _umount_in_child)(request)
        except BaseException as err:
            code = 1
            with contextlib.suppress(OSError):
                os.write(errors_w, describe(err).encode())
        os._exit(code)
    os.close(errors_w)
    with os.fdopen(errors_r, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if message or status:
        raise ContainerError(f"{request['op']} {request['target']}: {message or 'failed'}")


def _check_target(target: str) -> None:
    if not target.startswith("/"):
        raise ContainerError(f"mount target {target!r}: expected an absolute path inside the container")


@hookimpl
def lxcframe_mount(state: Any, source: str, target: str, fstype: str | None, flags: int,
                   data: str | None) -> bool:
    _check_target(target)
    _run({"op": "mount", "init_pid": state.init_pid, "source": source, "target": target, "fstype": fstype,
          "flags": flags, "data": data})
    return True


@hookimpl
def lxcframe_umount(state: Any, target: str, flags: int, remove: bool) -> bool:
    _check_target(target)
    _run({"op": "umount", "init_pid": state.init_pid, "target": target, "flags": flags, "remove": remove})
    return True


def _helper_main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    try:
        (_mount_in_child if request["op"] == "mount" else _umount_in_child)(request)
    except Exception as err:
        from lxcframe.stage_runner import describe

        sys.stderr.write(describe(err) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_helper_main(sys.argv[1:]))
