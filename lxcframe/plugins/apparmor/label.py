"""Changing a process's AppArmor label: ``changeprofile <label>`` written to its ``attr`` file.

The init child opens the file while the host's /proc is still reachable (before ``pivot_root``) and
writes through that descriptor afterwards, so the container needs no /proc of its own for it.
"""

from __future__ import annotations

import os

from lxcframe.plugins.apparmor.host import HostPaths

#: The AppArmor-specific file (kernels with LSM stacking) first, then the shared one.
_ATTR_FILES = ("self/attr/apparmor/current", "self/attr/current")


def open_label_attr(paths: HostPaths, proc_self: int = -1) -> int:
    """A write descriptor on this process's label attribute (close-on-exec).

    ``proc_self``: a descriptor of our /proc/self directory, for a process whose /proc is now
    another pid namespace's (attach).
    """
    last: OSError | None = None
    for relative in _ATTR_FILES:
        try:
            if proc_self >= 0:
                return os.open(relative.removeprefix("self/"), os.O_WRONLY | os.O_CLOEXEC, dir_fd=proc_self)
            return os.open(paths.procfs(relative), os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError as err:
            last = err
    assert last is not None
    raise last


def change_profile(fd: int, label: str) -> None:
    """Switch to ``label`` now; the kernel answers EACCES/ENOENT when the profile refuses or is missing."""
    command = f"changeprofile {label}".encode()
    try:
        written = os.write(fd, command)
    except OSError as err:
        raise OSError(err.errno, f"cannot change AppArmor profile to {label!r}: {err.strerror}") from None
    if written != len(command):
        raise OSError(f"cannot change AppArmor profile to {label!r}: short write")
