"""fstab-style mount options to mount(2) flags and data, as LXC reads ``lxc.mount.entry``."""

from __future__ import annotations

import attrs

from lxcframe import syscalls

# option -> (flags to set, flags to clear)
_FLAG_OPTIONS: dict[str, tuple[int, int]] = {
    "defaults": (0, 0),
    "ro": (syscalls.MS_RDONLY, 0),
    "rw": (0, syscalls.MS_RDONLY),
    "suid": (0, syscalls.MS_NOSUID),
    "nosuid": (syscalls.MS_NOSUID, 0),
    "dev": (0, syscalls.MS_NODEV),
    "nodev": (syscalls.MS_NODEV, 0),
    "exec": (0, syscalls.MS_NOEXEC),
    "noexec": (syscalls.MS_NOEXEC, 0),
    "sync": (syscalls.MS_SYNCHRONOUS, 0),
    "async": (0, syscalls.MS_SYNCHRONOUS),
    "dirsync": (syscalls.MS_DIRSYNC, 0),
    "remount": (syscalls.MS_REMOUNT, 0),
    "bind": (syscalls.MS_BIND, 0),
    "rbind": (syscalls.MS_BIND | syscalls.MS_REC, 0),
    "atime": (0, syscalls.MS_NOATIME),
    "noatime": (syscalls.MS_NOATIME, 0),
    "diratime": (0, syscalls.MS_NODIRATIME),
    "nodiratime": (syscalls.MS_NODIRATIME, 0),
    "relatime": (syscalls.MS_RELATIME, 0),
    "norelatime": (0, syscalls.MS_RELATIME),
    "strictatime": (syscalls.MS_STRICTATIME, 0),
    "lazytime": (syscalls.MS_LAZYTIME, 0),
    "mand": (syscalls.MS_MANDLOCK, 0),
    "nomand": (0, syscalls.MS_MANDLOCK),
    "silent": (syscalls.MS_SILENT, 0),
    "loud": (0, syscalls.MS_SILENT),
}

_PROPAGATION: dict[str, int] = {
    "private": syscalls.MS_PRIVATE,
    "rprivate": syscalls.MS_PRIVATE | syscalls.MS_REC,
    "slave": syscalls.MS_SLAVE,
    "rslave": syscalls.MS_SLAVE | syscalls.MS_REC,
    "shared": syscalls.MS_SHARED,
    "rshared": syscalls.MS_SHARED | syscalls.MS_REC,
    "unbindable": syscalls.MS_UNBINDABLE,
    "runbindable": syscalls.MS_UNBINDABLE | syscalls.MS_REC,
}


@attrs.frozen
class MountOptions:
    flags: int
    propagation: int
    data: str | None
    create: str | None  # "dir" or "file"
    optional: bool


def parse_options(options: tuple[str, ...] | list[str]) -> MountOptions:
    flags = 0
    propagation = 0
    data: list[str] = []
    create: str | None = None
    optional = False
    for option in options:
        if option in _FLAG_OPTIONS:
            set_flags, clear_flags = _FLAG_OPTIONS[option]
            flags = (flags | set_flags) & ~clear_flags
        elif option in _PROPAGATION:
            propagation |= _PROPAGATION[option]
        elif option.startswith("create="):
            create = option.partition("=")[2]
            if create not in ("dir", "file"):
                raise ValueError(f"create={create}: expected create=dir or create=file")
        elif option == "optional":
            optional = True
        elif option:
            data.append(option)
    return MountOptions(flags, propagation, ",".join(data) or None, create, optional)


def validate_options(options: tuple[str, ...]) -> None:
    parse_options(options)
