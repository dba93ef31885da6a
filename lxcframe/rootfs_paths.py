"""Resolve paths inside a container rootfs without escaping it.

A container image is untrusted: ``/mnt`` in it may be a symlink to ``/etc``
or ``../../../../etc``. Resolving such a path naively from the host (as
``os.path.join(rootfs, "mnt")`` + mount(2) would) follows the link on the
host and mounts over the host's /etc. Here every lookup goes through
openat2(2) with RESOLVE_IN_ROOT, so the kernel treats ``root_fd`` as "/" for
absolute symlinks and clamps ``..`` at it, and RESOLVE_NO_MAGICLINKS so that
/proc/<pid>/fd/N style links inside the rootfs cannot jump out either.

Callers then act on the resulting fd: ``fd_path(fd)`` names the resolved
object through /proc/self/fd, which mount(2) follows to exactly that inode,
so there is no window between check and use.

``root_fd`` must be opened in the mount namespace where the result is used:
an fd opened before ``unshare(CLONE_NEWNS)`` keeps resolving through the old
namespace's mounts, and mount(2) rejects such targets with EINVAL.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from lxcframe import syscalls

_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS

# openat2 returns EAGAIN under RESOLVE_IN_ROOT when a rename or mount raced
# with the lookup (the kernel cannot prove that ".." stayed inside the root).
# Retrying is the documented remedy; a bounded count avoids livelock.
_EAGAIN_RETRIES = 32


def _relative(path: str) -> str:
    """Turn ``path`` into something relative to the root fd.

    Absolute paths would work too under RESOLVE_IN_ROOT, but stripping the
    slashes makes "relative to the root" explicit and maps "/" to ".".
    """
    stripped = path.lstrip("/")
    return stripped or "."


def open_in_root(
    root_fd: int,
    path: str,
    flags: int = os.O_PATH | os.O_CLOEXEC,
    mode: int = 0,
    resolve: int = 0,
) -> int:
    """Open ``path`` (absolute or relative: both mean relative to the
    root) as seen from inside ``root_fd``.

    O_CLOEXEC is always added: these fds must never leak into the container.
    ``resolve`` adds RESOLVE_* flags (RESOLVE_NO_SYMLINKS: follow no symlink at all).
    """
    target = _relative(path)
    for _attempt in range(_EAGAIN_RETRIES):
        try:
            return syscalls.openat2(root_fd, target, flags | os.O_CLOEXEC, mode, _RESOLVE | resolve)
        except BlockingIOError:
            continue
    return syscalls.openat2(root_fd, target, flags | os.O_CLOEXEC, mode, _RESOLVE | resolve)


def _components(path: str) -> list[str]:
    # "." and empty components are no-ops; ".." is kept because its meaning
    # depends on what the previous component resolves to (symlinks), which
    # only the kernel can decide.
    return [part for part in path.split("/") if part not in ("", ".")]


def makedirs_in_root(root_fd: int, path: str, mode: int = 0o755, resolve: int = 0) -> int:
    """``mkdir -p path`` inside the root; returns an O_PATH fd of the
    final directory. Existing directories (reached through in-root
    symlinks, if need be, unless ``resolve`` has RESOLVE_NO_SYMLINKS) are fine."""
    current = open_in_root(root_fd, ".", os.O_PATH | os.O_DIRECTORY)
    prefix = ""
    try:
        for part in _components(path):
            prefix = f"{prefix}/{part}" if prefix else part
            try:
                child = open_in_root(root_fd, prefix, os.O_PATH | os.O_DIRECTORY, resolve=resolve)
            except FileNotFoundError:
                # `current` is the in-root resolution of everything before
                # `part`, so creating `part` relative to it stays inside.
                if part == "..":
                    raise
                # EEXIST: lost a race, or a dangling symlink (the reopen
                # below reports that one).
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=current)
                # Reopen by full path rather than by name under `current`, so
                # that whatever is there now is again resolved in the root.
                child = open_in_root(root_fd, prefix, os.O_PATH | os.O_DIRECTORY, resolve=resolve)
            os.close(current)
            current = child
    except BaseException:
        os.close(current)
        raise
    return current


def create_file_in_root(root_fd: int, path: str, mode: int = 0o644) -> int:
    """Make sure a non-directory exists at ``path`` inside the root (for use
    as a bind-mount target), creating parents; returns an O_PATH fd.

    An existing file (or device node, socket ...) is accepted as is. A
    dangling symlink is followed and its target created, still inside the
    root.
    """
    relative = _relative(path).rstrip("/")
    parent, _, name = relative.rpartition("/")
    if name in ("", ".", ".."):
        raise IsADirectoryError(errno.EISDIR, f"create_file_in_root: {os.strerror(errno.EISDIR)}", path)
    parent_fd = makedirs_in_root(root_fd, parent or ".")
    os.close(parent_fd)
    try:
        fd = open_in_root(root_fd, relative)
    except FileNotFoundError:
        # O_NONBLOCK so that a FIFO planted there meanwhile fails with ENXIO
        # instead of blocking us. No O_EXCL: it would refuse to follow a
        # dangling symlink, and an existing file is fine anyway (no O_TRUNC).
        created = open_in_root(root_fd, relative, os.O_CREAT | os.O_WRONLY | os.O_NONBLOCK, mode)
        os.close(created)
        fd = open_in_root(root_fd, relative)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, f"create_file_in_root: {os.strerror(errno.EISDIR)}", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def fd_path(fd: int) -> str:
    """A path naming exactly the object behind ``fd`` (for mount(2) etc.)."""
    return f"/proc/self/fd/{fd}"


def write_in_root(root_fd: int, path: str, data: str) -> None:
    """Write ``data`` to the existing file ``path`` below ``root_fd`` (a /proc or /sys knob)."""
    fd = open_in_root(root_fd, path, os.O_WRONLY)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)
