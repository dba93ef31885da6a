"""The console keys: their validators and the settings one start uses."""

from __future__ import annotations

import attrs

from lxcframe.config.keys import KeySpec, absolute_path, boolean01, uint
from lxcframe.config.model import ContainerConfig

#: ``auto`` for a ring buffer or a log-file limit means 128 KiB, as in LXC.
AUTO_SIZE = 128 * 1024
PAGE_SIZE = 4096
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}


def size(value: str) -> int:
    """``auto``, or bytes with an optional kB/MB/GB suffix; anything non-zero is at least one page."""
    text = value.strip().lower()
    if text == "auto":
        return AUTO_SIZE
    digits = text.rstrip("kmgb ")
    unit = text[len(digits):].strip()
    if not digits.isdigit() or unit not in _UNITS:
        raise ValueError("expected auto or a size in bytes (optionally with kB, MB or GB)")
    number = int(digits) * _UNITS[unit]
    return max(number, PAGE_SIZE) if number else 0


def console_path(value: str) -> str:
    if value != "none" and not value.startswith("/"):
        raise ValueError("expected none or an absolute path of a host device")
    return value


def tty_dir(value: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise ValueError("expected a directory name below /dev (no slashes)")
    return value


LOGFILE_KEY = "lxc.console.logfile"

KEYS = [
    KeySpec("lxc.console.path", console_path, doc="none disables the console; a host device to mirror it to"),
    KeySpec(LOGFILE_KEY, absolute_path, doc="host file the console output is appended to"),
    KeySpec("lxc.console.size", size, doc="limit of the console log file (auto: 128 KiB)"),
    KeySpec("lxc.console.buffer.size", size, doc="in-memory ring buffer of console output (auto: 128 KiB)"),
    KeySpec("lxc.console.rotate", boolean01, doc="rotate the log file to <file>.1 when it reaches its limit"),
    KeySpec("lxc.tty.max", uint, doc="number of /dev/ttyN allocated from the container's devpts"),
    KeySpec("lxc.tty.dir", tty_dir, doc="put the ttys and console in /dev/DIR, with symlinks in /dev"),
]


@attrs.frozen
class ConsoleSettings:
    enabled: bool
    #: A host device that mirrors the console (``lxc.console.path`` other than ``none``), or "".
    mirror: str
    logfile: str
    log_limit: int
    rotate: bool
    buffer_size: int
    tty_max: int
    tty_dir: str
    #: The file and line that set ``lxc.console.logfile`` (``None`` if none did): a log file the
    #: monitor cannot open is an error at that line, told by this part alone.
    logfile_path: str | None = None
    logfile_line: int | None = None

    @classmethod
    def from_config(cls, config: ContainerConfig) -> ConsoleSettings:
        path = config.get("lxc.console.path") or ""
        logfile = config.located(LOGFILE_KEY)
        return cls(
            enabled=path != "none",
            mirror=path if path not in ("", "none") else "",
            logfile=config.get(LOGFILE_KEY) or "",
            log_limit=config.get("lxc.console.size") or 0,
            rotate=bool(config.get("lxc.console.rotate", False)),
            buffer_size=config.get("lxc.console.buffer.size") or 0,
            tty_max=config.get("lxc.tty.max") or 0,
            tty_dir=config.get("lxc.tty.dir") or "",
            logfile_path=logfile.path if logfile else None,
            logfile_line=logfile.line if logfile else None,
        )
