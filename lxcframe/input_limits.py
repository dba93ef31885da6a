"""Reading the files a config points at within fixed bounds.

``lxc.include`` and ``lxc.seccomp.profile`` name host files that are read whole, in the caller (``config
validate``, ``start``) and the monitor. Any path can be written there, so reading must not trust what is
found: a FIFO blocks the open until someone writes, a device such as /dev/zero never ends, and includes
that each include the next level twice grow exponentially without ever looping. The caps below are far
above any real config (LXC's shipped files are a few KiB, nested three or four levels, a few dozen files
per container) and low enough that the worst input still loads in about a second and a few MiB.
"""

from __future__ import annotations

import os
import stat

#: One included file or seccomp profile.
MAX_FILE_BYTES = 1 << 20
#: Lines of one included file or seccomp profile (a million one-byte lines would fit in the byte cap).
MAX_FILE_LINES = 10_000
#: Nested ``lxc.include`` levels below the config file itself.
MAX_INCLUDE_DEPTH = 64
#: Files read in one config load, the config itself and every include (a file included twice counts twice).
MAX_FILES_PER_LOAD = 1_000
#: Bytes read in one config load: without it, 1,000 files of 1 MiB would still be a GiB.
MAX_BYTES_PER_LOAD = 16 << 20

# A FIFO must never block the open; O_NOCTTY in case the path is a terminal (refused just after).
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


class InputRefused(ValueError):
    """A file that is not read: not a regular file, or over a cap. The message names no path."""


def kind_of(mode: int) -> str:
    """``"a FIFO"``, ``"a character device"``… for a file mode (``"a regular file"`` for one)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def refuse_unless_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise InputRefused(f"is {kind_of(mode)}, not a regular file")


def read_bounded(path: str) -> bytes:
    """The content of the regular file at ``path``, at most :data:`MAX_FILE_BYTES` of it.

    :class:`InputRefused` for anything else; ``OSError`` (no such file, permission denied) passes
    through for the caller to word.
    """
    # stat first: a device is refused without being opened (opening some has effects, e.g. a tape
    # rewinds); the fstat after the open makes the answer hold for what was actually opened.
    refuse_unless_regular(os.stat(path).st_mode)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        refuse_unless_regular(os.fstat(fd).st_mode)
        data = _read_at_most(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise InputRefused(f"larger than {MAX_FILE_BYTES} bytes")
    return data


def decode_lines(data: bytes, *, errors: str = "strict") -> list[str]:
    """``data`` as UTF-8 lines (split as :meth:`str.splitlines` does), at most :data:`MAX_FILE_LINES`.

    ``UnicodeDecodeError`` (with ``errors="strict"``) passes through.
    """
    lines = data.decode("utf-8", errors).splitlines()
    if len(lines) > MAX_FILE_LINES:
        raise InputRefused(f"more than {MAX_FILE_LINES} lines")
    return lines


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
