"""Capabilities: names and numbers, the thread's sets (capget/capset), the kernel's last one."""

from __future__ import annotations

import ctypes
from typing import NamedTuple

from lxcframe.syscalls.libc import _checked, _raw

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

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
