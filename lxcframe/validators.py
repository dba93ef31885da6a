"""Validators for LXC value syntaxes shared by several plugins (signals, rootfs paths, mount entries)."""

from __future__ import annotations

import re
import signal

import attrs


def signal_number(value: str) -> int:
    """``SIGTERM`` (prefix required, any case), ``SIGRTMIN+3``/``SIGRTMAX-1``, or a plain number."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    upper = text.upper()
    match = re.fullmatch(r"SIGRT(MIN|MAX)(?:([+-])(\d+))?", upper)
    if match:
        base = signal.SIGRTMIN if match.group(1) == "MIN" else signal.SIGRTMAX
        offset = int(match.group(3) or 0) * (1 if match.group(2) != "-" else -1)
        number = int(base) + offset
        if not int(signal.SIGRTMIN) <= number <= int(signal.SIGRTMAX):
            raise ValueError("real-time signal out of range")
        return number
    if upper.startswith("SIG") and hasattr(signal.Signals, upper):
        return int(signal.Signals[upper])
    raise ValueError("expected a signal name such as SIGTERM, SIGRTMIN+n, or a number")


def rootfs_path(value: str) -> str:
    """``lxc.rootfs.path``: ``/path``, ``dir:/path`` or ``overlay:/lower:/upper`` (kept whole, for the
    child's rootfs stage to mount: :mod:`lxcframe.rootfs_overlay`)."""
    from lxcframe import rootfs_overlay

    if rootfs_overlay.is_overlay(value):
        return rootfs_overlay.parse(value).value
    path = value.removeprefix("dir:")
    if not path.startswith("/"):
        raise ValueError("expected an absolute path or dir:/path")
    return path


@attrs.frozen
class MountEntry:
    """One fstab-format line of ``lxc.mount.entry`` / ``lxc.mount.fstab``."""

    source: str
    target: str
    fstype: str
    options: tuple[str, ...]
    dump: int = 0
    passno: int = 0


def _unescape(field: str) -> str:
    # fstab escapes spaces and friends as octal: \040 is a space.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_entry(value: str) -> MountEntry:
    fields = value.split()
    if not 4 <= len(fields) <= 6:
        raise ValueError("expected 'source target fstype options [dump [pass]]'")
    try:
        numbers = [int(f) for f in fields[4:]]
    except ValueError:
        raise ValueError("dump and pass must be numbers") from None
    source, target, fstype, options = (_unescape(f) for f in fields[:4])
    return MountEntry(source, target, fstype, tuple(options.split(",")), *numbers)


def environment_entry(value: str) -> str:
    """``lxc.environment``: ``NAME=value``, or a bare ``NAME`` inheriting the caller's value."""
    name = value.partition("=")[0]
    if not name or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError("expected NAME=value or NAME")
    return value
