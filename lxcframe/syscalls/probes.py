"""Feature probes: whether the running kernel has a syscall, which libseccomp can be loaded."""

from __future__ import annotations

import ctypes
import errno
import functools
import os

from lxcframe.syscalls.constants import AT_EMPTY_PATH
from lxcframe.syscalls.libc import _raw, _syscall_numbers, _SyscallArg

# Arguments that every kernel which has the syscall rejects up front
# (invalid flag bits, NULL pointers, zero struct sizes) before doing anything,
# so a probe can never have side effects. Whatever errno comes back other
# than ENOSYS proves the syscall exists.
_PROBE_ARGS: dict[str, tuple[_SyscallArg, ...]] = {
    "open_tree": (-1, None, 0xFFFFFFFF),
    "move_mount": (-1, None, -1, None, 0xFFFFFFFF),
    # Not AT_EMPTY_PATH: with it, newer kernels accept a NULL path.
    "execveat": (-1, None, None, None, 0xFFFFFFFF & ~AT_EMPTY_PATH),
    "openat2": (-1, None, None, 0),
    "pidfd_open": (0, 0xFFFFFFFF),
    "pidfd_send_signal": (-1, 0, None, 0xFFFFFFFF),
    "mount_setattr": (-1, None, 0xFFFFFFFF, None, 0),
    "clone3": (None, 0),
}


def syscall_supported(name: str) -> bool:
    """Whether the running kernel implements syscall ``name``.

    Supported names: open_tree, move_mount, execveat, openat2, pidfd_open,
    pidfd_send_signal, mount_setattr, clone3.
    """
    try:
        args = _PROBE_ARGS[name]
    except KeyError:
        raise ValueError(f"no probe for syscall {name!r}") from None
    try:
        _syscall_numbers()
    except OSError:
        return False  # unknown architecture: we could not call it anyway
    result = _raw(name, *args)
    if result >= 0:
        # Cannot happen with the arguments above; if it somehow did and the
        # call returns an fd, don't leak it.
        if name in ("open_tree", "openat2", "pidfd_open"):
            os.close(result)
        return True
    return ctypes.get_errno() != errno.ENOSYS


@functools.cache
def libseccomp_available() -> str | None:
    """Describe the loadable libseccomp (e.g. ``"libseccomp.so.2 2.5.4"``),
    or None if it cannot be found or loaded."""
    import ctypes.util  # here: it imports subprocess, shutil, tempfile and more (~10 ms) for every command

    name = ctypes.util.find_library("seccomp")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None

    class _Version(ctypes.Structure):
        _fields_ = [
            ("major", ctypes.c_uint),
            ("minor", ctypes.c_uint),
            ("micro", ctypes.c_uint),
        ]

    try:
        get_version = lib.seccomp_version
    except AttributeError:  # libseccomp < 2.3 has no seccomp_version()
        return name
    get_version.restype = ctypes.POINTER(_Version)
    get_version.argtypes = []
    version = get_version()
    if not version:
        return name
    return f"{name} {version.contents.major}.{version.contents.minor}.{version.contents.micro}"
