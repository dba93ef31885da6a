"""The generated profile on disk: written only when its text changed, removed with its directory.

The parser's binary cache is keyed on the profile file's mtime: rewriting an unchanged profile on
every start would force a full compile every time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile

DIR_MODE = 0o755
FILE_MODE = 0o600


def _current(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_if_changed(path: str, text: str) -> bool:
    """Make ``path`` hold ``text`` (mode 0600, parents 0755); True when it was (re)written."""
    data = text.encode()
    if _current(path) == data:
        return False
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
    # Written aside and renamed over, so the parser never reads a half-written profile.
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".new")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, FILE_MODE)
        os.rename(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return True


def remove(path: str) -> None:
    """Remove the profile file and its directory; what is already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    try:
        os.rmdir(os.path.dirname(path))
    except OSError as err:
        # Someone else's file in there is theirs to keep.
        if err.errno not in (errno.ENOENT, errno.ENOTEMPTY):
            raise


def remove_dir(path: str) -> None:
    """rmdir ``path`` (a policy namespace), unless it is gone already."""
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(path)
