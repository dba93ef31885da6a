"""The mount API: mount/umount2, pivot_root, open_tree, move_mount, mount_setattr, and openat2
(path resolution inside a root)."""

from __future__ import annotations

import ctypes

from lxcframe.syscalls.libc import StrPath, _b, _checked, _libc, _raw


def mount(
    source: StrPath | None,
    target: StrPath,
    fstype: str | bytes | None,
    flags: int = 0,
    data: str | bytes | None = None,
) -> None:
    """mount(2). ``None`` arguments are passed as NULL."""
    fs = fstype.encode() if isinstance(fstype, str) else fstype
    opts = data.encode() if isinstance(data, str) else data
    result = _libc().mount(_b(source), _b(target), fs, flags, opts)
    _checked("mount", result, target)


def umount2(target: StrPath, flags: int = 0) -> None:
    """umount2(2)."""
    _checked("umount2", _libc().umount2(_b(target), flags), target)


def pivot_root(new_root: StrPath, put_old: StrPath) -> None:
    """pivot_root(2); glibc has no wrapper, so this is a raw syscall."""
    _checked("pivot_root", _raw("pivot_root", _b(new_root), _b(put_old)), new_root, put_old)


def open_tree(dirfd: int, path: StrPath, flags: int) -> int:
    """open_tree(2): return an O_PATH fd for (a clone of) a mount tree."""
    return _checked("open_tree", _raw("open_tree", dirfd, _b(path), flags), path)


def move_mount(
    from_dirfd: int,
    from_path: StrPath,
    to_dirfd: int,
    to_path: StrPath,
    flags: int,
) -> None:
    """move_mount(2): attach/move a mount (e.g. one made by open_tree)."""
    result = _raw("move_mount", from_dirfd, _b(from_path), to_dirfd, _b(to_path), flags)
    # Empty paths are the norm here (fd-based moves); only name real ones.
    _checked("move_mount", result, to_path or None, from_path or None)


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount_setattr(
    dirfd: int,
    path: StrPath,
    flags: int,
    attr_set: int = 0,
    attr_clr: int = 0,
    propagation: int = 0,
    userns_fd: int = 0,
) -> None:
    """mount_setattr(2): change mount properties, including idmapping."""
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    result = _raw("mount_setattr", dirfd, _b(path), flags, ctypes.byref(attr), ctypes.sizeof(attr))
    _checked("mount_setattr", result, path or None)


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


def openat2(dirfd: int, path: StrPath, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """openat2(2). Unlike openat, unknown flags and a mode without
    O_CREAT/O_TMPFILE are rejected with EINVAL by the kernel."""
    how = _OpenHow(flags, mode, resolve)
    result = _raw("openat2", dirfd, _b(path), ctypes.byref(how), ctypes.sizeof(how))
    return _checked("openat2", result, path)
