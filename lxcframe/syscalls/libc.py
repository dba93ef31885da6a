"""The loader: libc (a private CDLL, loaded on first use), syscall numbers per machine, and the
errno-to-OSError conversion every wrapper of this package goes through."""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from typing import NoReturn, Union

StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

# --------------------------------------------------------------------------
# Syscall numbers. Only calls without a (usable) glibc wrapper go through
# syscall(2); the rest use libc so that glibc keeps its own bookkeeping.
# --------------------------------------------------------------------------
_SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {
        "keyctl": 250,
        "pivot_root": 155,
        "open_tree": 428,
        "move_mount": 429,
        "openat2": 437,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "execveat": 322,
        "mount_setattr": 442,
        "capget": 125,
        "capset": 126,
        "clone3": 435,
        "rt_sigaction": 13,
        "bpf": 321,
    },
    "aarch64": {
        "keyctl": 219,
        "pivot_root": 41,
        "open_tree": 428,
        "move_mount": 429,
        "openat2": 437,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "execveat": 281,
        "mount_setattr": 442,
        "capget": 90,
        "capset": 91,
        "clone3": 435,
        "rt_sigaction": 134,
        "bpf": 280,
    },
}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


@functools.cache
def _libc() -> ctypes.CDLL:
    # A private CDLL instance so that the argtypes we set cannot clash with anybody else's use of
    # ctypes. Of the process's own symbols (dlopen(NULL)), which hold the libc the interpreter runs
    # with: no ctypes.util.find_library, which runs ldconfig or a compiler to find a name.
    lib = ctypes.CDLL(None, use_errno=True)
    c_int, c_char_p, c_ulong, c_size_t = (
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_size_t,
    )
    signatures: dict[str, tuple[object, list[object]]] = {
        "mount": (c_int, [c_char_p, c_char_p, c_char_p, c_ulong, c_char_p]),
        "umount2": (c_int, [c_char_p, c_int]),
        "prctl": (c_int, [c_int, c_ulong, c_ulong, c_ulong, c_ulong]),
        "sethostname": (c_int, [c_char_p, c_size_t]),
        "unshare": (c_int, [c_int]),
        "setns": (c_int, [c_int, c_int]),
        "personality": (c_int, [c_ulong]),
    }
    for fname, (restype, argtypes) in signatures.items():
        func = getattr(lib, fname)
        func.restype = restype
        func.argtypes = argtypes
    # syscall(2) is variadic: leave argtypes unset and pass ctypes objects.
    lib.syscall.restype = ctypes.c_long
    return lib


@functools.cache
def _syscall_numbers() -> dict[str, int]:
    machine = os.uname().machine  # what platform.machine() reads, without importing platform (~3 ms)
    machine = _MACHINE_ALIASES.get(machine, machine)
    try:
        return _SYSCALL_NUMBERS[machine]
    except KeyError:
        raise OSError(
            errno.ENOSYS, f"no syscall numbers for architecture {machine}: {os.strerror(errno.ENOSYS)}"
        ) from None


def _raise(name: str, path: StrPath | None = None, path2: StrPath | None = None) -> NoReturn:
    err = ctypes.get_errno()
    message = f"{name}: {os.strerror(err)}"
    # OSError(errno, ...) returns the matching subclass (FileNotFoundError,
    # PermissionError ...), which callers rely on.
    if path2 is not None:
        raise OSError(err, message, _show(path), None, _show(path2))
    if path is not None:
        raise OSError(err, message, _show(path))
    raise OSError(err, message)


def _show(path: StrPath | None) -> str | None:
    if path is None:
        return None
    return os.fsdecode(path)


def _b(path: StrPath | None) -> bytes | None:
    """Encode a path-ish argument for C; None stays None (→ NULL)."""
    if path is None:
        return None
    return os.fsencode(path)


_SyscallArg = Union[int, bytes, None, "ctypes._CData", "ctypes._CArgObject"]


def _raw(name: str, *args: _SyscallArg) -> int:
    """Issue syscall ``name`` and return its raw result (-1 on failure).

    Integers are passed as C longs: syscall(2) is variadic and reads every
    argument as a long, so a plain ctypes int would leave the upper half of
    the register undefined (fatal for negative fds such as AT_FDCWD).
    """
    converted: list[object] = []
    for arg in args:
        if arg is None:
            converted.append(ctypes.c_void_p(None))
        elif isinstance(arg, int):
            converted.append(ctypes.c_long(arg))
        elif isinstance(arg, bytes):
            converted.append(ctypes.c_char_p(arg))
        else:
            converted.append(arg)
    ctypes.set_errno(0)
    result: int = _libc().syscall(ctypes.c_long(_syscall_numbers()[name]), *converted)
    return result


def _checked(name: str, result: int, path: StrPath | None = None, path2: StrPath | None = None) -> int:
    if result < 0:
        _raise(name, path, path2)
    return result
