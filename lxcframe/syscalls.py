"""Thin, typed wrappers around the Linux system calls lxcframe needs.

This is the only module in the project that touches ctypes, libc or raw
syscall numbers; everything else goes through the functions defined here.

Conventions:

* Every failing call raises a plain :class:`OSError` built from the errno,
  so callers get the usual subclasses (``FileNotFoundError``,
  ``PermissionError`` ...). The message names the syscall, and the path
  (if any) is attached as ``filename`` (and ``filename2``).
* libc is loaded lazily on first use, never at import time.
* Path arguments accept ``str``, ``bytes`` or ``os.PathLike``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import platform
from collections.abc import Mapping, Sequence
from typing import NamedTuple, NoReturn, Union

StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

# --------------------------------------------------------------------------
# Namespace flags (clone(2), unshare(2), setns(2))
# --------------------------------------------------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_FS = 0x00000200
CLONE_FILES = 0x00000400
CLONE_NEWNS = 0x00020000
CLONE_SYSVSEM = 0x00040000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# --------------------------------------------------------------------------
# mount(2) / umount2(2)
# --------------------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_KERNMOUNT = 1 << 22
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# --------------------------------------------------------------------------
# prctl(2)
# --------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

# --------------------------------------------------------------------------
# keyctl(2)
# --------------------------------------------------------------------------
KEYCTL_GET_KEYRING_ID = 0
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_UPDATE = 2
KEYCTL_REVOKE = 3
KEYCTL_CHOWN = 4
KEYCTL_SETPERM = 5
KEYCTL_DESCRIBE = 6
KEYCTL_CLEAR = 7
KEYCTL_LINK = 8
KEYCTL_UNLINK = 9
KEYCTL_SEARCH = 10
KEYCTL_READ = 11
KEYCTL_SET_TIMEOUT = 15
KEYCTL_GET_SECURITY = 17
KEYCTL_SESSION_TO_PARENT = 18
KEYCTL_INVALIDATE = 21

KEY_SPEC_THREAD_KEYRING = -1
KEY_SPEC_PROCESS_KEYRING = -2
KEY_SPEC_SESSION_KEYRING = -3
KEY_SPEC_USER_KEYRING = -4
KEY_SPEC_USER_SESSION_KEYRING = -5
KEY_SPEC_GROUP_KEYRING = -6

# --------------------------------------------------------------------------
# New mount API, *at() flags, openat2(2) resolve flags
# --------------------------------------------------------------------------
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000  # == O_CLOEXEC

MOVE_MOUNT_F_SYMLINKS = 0x01
MOVE_MOUNT_F_AUTOMOUNTS = 0x02
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_SYMLINKS = 0x10
MOVE_MOUNT_T_AUTOMOUNTS = 0x20
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOVE_MOUNT_SET_GROUP = 0x100
MOVE_MOUNT_BENEATH = 0x200

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
RESOLVE_CACHED = 0x20

PIDFD_NONBLOCK = os.O_NONBLOCK

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

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
        "setns": 308,
        "unshare": 272,
        "clone3": 435,
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
        "setns": 268,
        "unshare": 97,
        "clone3": 435,
    },
}
_MACHINE_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}

# --------------------------------------------------------------------------
# Capabilities (include/uapi/linux/capability.h)
# --------------------------------------------------------------------------
CAPABILITIES: dict[str, int] = {
    "chown": 0,
    "dac_override": 1,
    "dac_read_search": 2,
    "fowner": 3,
    "fsetid": 4,
    "kill": 5,
    "setgid": 6,
    "setuid": 7,
    "setpcap": 8,
    "linux_immutable": 9,
    "net_bind_service": 10,
    "net_broadcast": 11,
    "net_admin": 12,
    "net_raw": 13,
    "ipc_lock": 14,
    "ipc_owner": 15,
    "sys_module": 16,
    "sys_rawio": 17,
    "sys_chroot": 18,
    "sys_ptrace": 19,
    "sys_pacct": 20,
    "sys_admin": 21,
    "sys_boot": 22,
    "sys_nice": 23,
    "sys_resource": 24,
    "sys_time": 25,
    "sys_tty_config": 26,
    "mknod": 27,
    "lease": 28,
    "audit_write": 29,
    "audit_control": 30,
    "setfcap": 31,
    "mac_override": 32,
    "mac_admin": 33,
    "syslog": 34,
    "wake_alarm": 35,
    "block_suspend": 36,
    "audit_read": 37,
    "perfmon": 38,
    "bpf": 39,
    "checkpoint_restore": 40,
}

# Capability sets are 64-bit masks in the v3 ABI.
_CAP_MAX = 63


def cap_number(name: str | int) -> int:
    """Translate ``sys_admin`` / ``SYS_ADMIN`` / ``CAP_SYS_ADMIN`` / ``21``
    into a capability number.

    Numbers (int or decimal string) are accepted as long as they fit in the
    64-bit capability sets, so that capabilities newer than this table can
    still be named by number.
    """
    if isinstance(name, bool):  # bool is an int subclass; True is not a cap
        raise ValueError(f"invalid capability: {name!r}")
    if isinstance(name, int):
        number = name
    elif isinstance(name, str):
        text = name.strip()
        if text.isdigit():
            number = int(text)
        else:
            key = text.lower()
            if key.startswith("cap_"):
                key = key[4:]
            if key not in CAPABILITIES:
                raise ValueError(f"unknown capability: {name!r}")
            return CAPABILITIES[key]
    else:
        raise ValueError(f"invalid capability: {name!r}")
    if not 0 <= number <= _CAP_MAX:
        raise ValueError(f"capability number out of range: {name!r}")
    return number


# --------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------


@functools.cache
def _libc() -> ctypes.CDLL:
    # A private CDLL instance so that the argtypes we set cannot clash with
    # anybody else's use of ctypes.
    name = ctypes.util.find_library("c") or "libc.so.6"
    lib = ctypes.CDLL(name, use_errno=True)
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
    machine = platform.machine()
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


# --------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (see unshare(2))."""
    _checked("unshare", _libc().unshare(flags))


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace referred to by ``fd`` (nsfs file or pidfd)."""
    _checked("setns", _libc().setns(fd, nstype))


def sethostname(name: str | bytes) -> None:
    """Set the hostname of the current UTS namespace."""
    raw = name.encode() if isinstance(name, str) else name
    _checked("sethostname", _libc().sethostname(raw, len(raw)))


# --------------------------------------------------------------------------
# Mounts
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Files and processes
# --------------------------------------------------------------------------


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


def pidfd_open(pid: int, flags: int = 0) -> int:
    """pidfd_open(2): a race-free handle to a process."""
    return _checked("pidfd_open", _raw("pidfd_open", pid, flags))


def pidfd_send_signal(pidfd: int, sig: int, flags: int = 0) -> None:
    """pidfd_send_signal(2) with a NULL siginfo (like kill(2))."""
    _checked("pidfd_send_signal", _raw("pidfd_send_signal", pidfd, sig, None, flags))


def _cstring_array(items: Sequence[str | bytes]) -> ctypes.Array[ctypes.c_char_p]:
    encoded = [os.fsencode(item) for item in items]
    array = (ctypes.c_char_p * (len(encoded) + 1))()
    for index, item in enumerate(encoded):
        array[index] = item  # the array keeps a reference to the bytes
    # The trailing element is already NULL from zero-initialisation.
    return array


def execveat(
    dirfd: int,
    path: StrPath,
    argv: Sequence[str | bytes],
    envp: Mapping[str, str] | Sequence[str | bytes],
    flags: int = 0,
) -> None:
    """execveat(2). Only ever returns by raising.

    ``envp`` may be a mapping or a ready-made list of ``KEY=VALUE`` strings.
    Pass ``path=""`` and ``flags=AT_EMPTY_PATH`` to execute ``dirfd`` itself.
    """
    if isinstance(envp, Mapping):
        env_list: list[str | bytes] = [f"{key}={value}" for key, value in envp.items()]
    else:
        env_list = list(envp)
    c_argv = _cstring_array(argv)
    c_envp = _cstring_array(env_list)
    _raw("execveat", dirfd, _b(path), c_argv, c_envp, flags)
    _raise("execveat", path or None)


# --------------------------------------------------------------------------
# prctl and friends
# --------------------------------------------------------------------------


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2) with integer arguments; returns the (non-negative) result."""
    return _checked("prctl", _libc().prctl(option, arg2, arg3, arg4, arg5))


def set_process_name(name: str) -> None:
    """Set this thread's name (``comm``, as ps and top show it); the kernel keeps 15 bytes."""
    buffer = ctypes.create_string_buffer(name.encode(errors="replace")[:15])
    _checked("prctl", _libc().prctl(PR_SET_NAME, ctypes.addressof(buffer), 0, 0, 0))


def set_pdeathsig(sig: int) -> None:
    """Ask for ``sig`` when the parent thread dies."""
    prctl(PR_SET_PDEATHSIG, sig)


#: personality(2) domains (linux/personality.h): what ``uname -m`` reports to the process.
PER_LINUX = 0x0000
PER_LINUX32 = 0x0008


def set_personality(persona: int) -> None:
    """personality(2) for this process and what it executes.

    The syscall table is chosen from the machine first: under ``PER_LINUX32`` ``uname`` (and so
    :func:`platform.machine`) names the 32-bit machine, whose numbers are not this kernel's.
    """
    try:
        _syscall_numbers()
    except OSError:
        pass  # a machine without a table: no call of ours needs one
    _checked("personality", _libc().personality(persona))


def get_pdeathsig() -> int:
    """Return the current parent-death signal (0 if none)."""
    # PR_GET_PDEATHSIG writes into an int*, which prctl() above can't pass.
    value = ctypes.c_int(0)
    _checked("prctl", _libc().prctl(PR_GET_PDEATHSIG, ctypes.addressof(value), 0, 0, 0))
    return value.value


def set_no_new_privs() -> None:
    """Irreversibly forbid privilege gain through execve (setuid, fcaps)."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def ambient_raise(cap: int | str) -> None:
    """Raise a capability in the ambient set (it must already be in both the
    permitted and the inheritable sets)."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap_number(cap))


def ambient_clear_all() -> None:
    """Empty the ambient capability set."""
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def ambient_is_set(cap: int | str) -> bool:
    """Whether ``cap`` is in the ambient set."""
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap_number(cap)) == 1


def drop_bounding_cap(cap: int | str) -> None:
    """Remove a capability from the bounding set (needs CAP_SETPCAP)."""
    prctl(PR_CAPBSET_DROP, cap_number(cap))


def bounding_has(cap: int | str) -> bool:
    """Whether ``cap`` is in the bounding set."""
    return prctl(PR_CAPBSET_READ, cap_number(cap)) == 1


# --------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------


class CapSets(NamedTuple):
    """The three per-thread capability sets as 64-bit masks."""

    effective: int
    permitted: int
    inheritable: int

    def has(self, cap: int | str, which: str = "effective") -> bool:
        """Whether capability ``cap`` is in set ``which``."""
        mask: int = getattr(self, which)
        return bool(mask >> cap_number(cap) & 1)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def capget(pid: int = 0) -> CapSets:
    """Return the capability sets of ``pid`` (0 = calling thread)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()  # v3: low and high 32 bits in two elements
    _checked("capget", _raw("capget", ctypes.byref(header), data))
    return CapSets(
        effective=data[0].effective | data[1].effective << 32,
        permitted=data[0].permitted | data[1].permitted << 32,
        inheritable=data[0].inheritable | data[1].inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's capability sets (64-bit masks)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for index, shift in enumerate((0, 32)):
        data[index].effective = (effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _checked("capset", _raw("capset", ctypes.byref(header), data))


def cap_last_cap() -> int:
    """Highest capability number the running kernel knows."""
    with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as handle:
        return int(handle.read().strip())


# --------------------------------------------------------------------------
# Keyrings
# --------------------------------------------------------------------------


def keyctl(operation: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """Raw keyctl(2) with integer arguments (no libkeyutils needed)."""
    return _checked("keyctl", _raw("keyctl", operation, arg2, arg3, arg4, arg5))


def join_session_keyring(name: str | None = None) -> int:
    """Join (or create) a session keyring; ``None`` makes an anonymous one.

    Containers get their own session keyring so they cannot see the host's
    keys. Returns the serial of the keyring now in use.
    """
    raw_name = name.encode() if name is not None else None
    result = _raw("keyctl", KEYCTL_JOIN_SESSION_KEYRING, raw_name)
    return _checked("keyctl", result)


def session_keyring_id() -> int:
    """Serial of the current session keyring (without creating one)."""
    return keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)


# --------------------------------------------------------------------------
# Feature probes
# --------------------------------------------------------------------------

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
