"""Namespaces and pidfds: unshare, setns (by nsfs file or pidfd), the host name, pidfd_open/send_signal."""

from __future__ import annotations

import fcntl

from lxcframe.syscalls.libc import _checked, _libc, _raw

#: ioctl_ns(2): the CLONE_NEW* type of the namespace an nsfs descriptor refers to.
NS_GET_NSTYPE = 0xB703


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (see unshare(2))."""
    _checked("unshare", _libc().unshare(flags))


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace referred to by ``fd`` (nsfs file or pidfd)."""
    _checked("setns", _libc().setns(fd, nstype))


def namespace_type(fd: int) -> int:
    """The ``CLONE_NEW*`` flag of the namespace ``fd`` refers to (``OSError`` ENOTTY: not a namespace)."""
    return fcntl.ioctl(fd, NS_GET_NSTYPE)


def sethostname(name: str | bytes) -> None:
    """Set the hostname of the current UTS namespace."""
    raw = name.encode() if isinstance(name, str) else name
    _checked("sethostname", _libc().sethostname(raw, len(raw)))


def pidfd_open(pid: int, flags: int = 0) -> int:
    """pidfd_open(2): a race-free handle to a process."""
    return _checked("pidfd_open", _raw("pidfd_open", pid, flags))


def pidfd_send_signal(pidfd: int, sig: int, flags: int = 0) -> None:
    """pidfd_send_signal(2) with a NULL siginfo (like kill(2))."""
    _checked("pidfd_send_signal", _raw("pidfd_send_signal", pidfd, sig, None, flags))
