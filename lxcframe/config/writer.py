"""Writing a key back into a config file without losing its comments, blank lines or order."""

from __future__ import annotations

import os
import tempfile

from lxcframe.config.parser import check_entry, parse_line
from lxcframe.errors import ConfigError

# The temporary file is renamed over the config or removed before set_item returns: its name is never seen.
TMP_PREFIX = ".config."


def set_item(path: str, key: str, value: str, *, multi: bool) -> None:
    """Set ``key`` in the file at ``path`` (only that file, never its includes).

    A single-valued key replaces its first line in place and drops later duplicates; a repeatable key
    gets a new line after its last one; an empty value removes the key's lines (and those below it).
    A key not yet present is appended at the end.
    """
    new_line = format_line(key, value, path=path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        data = b""
    try:
        lines = data.decode().splitlines()
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text ({err.reason} at byte {err.start})", path=path) from None
    below = key + "."
    positions: list[int] = []
    for index, text in enumerate(lines):
        entry = parse_line(text, path, index + 1)
        if entry is not None and (entry.key == key or (value == "" and entry.key.startswith(below))):
            positions.append(index)
    if value == "":
        lines = [text for index, text in enumerate(lines) if index not in positions]
    elif multi:
        at = positions[-1] + 1 if positions else len(lines)
        lines.insert(at, new_line)
    elif positions:
        lines[positions[0]] = new_line
        lines = [text for index, text in enumerate(lines) if index not in positions[1:]]
    else:
        lines.append(new_line)
    _write_atomically(path, "".join(line + "\n" for line in lines))


def remove_entries(path: str, *, shown: str | None = None) -> None:
    """Drop every ``key = value`` line of the file at ``path`` (its includes too), keeping comments and
    blank lines: what ``clear_config`` leaves once saved. Errors name ``shown`` (a scratch copy's
    original) when given."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        lines = data.decode().splitlines()
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text ({err.reason} at byte {err.start})", path=shown or path) from None
    kept = [text for index, text in enumerate(lines) if parse_line(text, shown or path, index + 1) is None]
    _write_atomically(path, "".join(line + "\n" for line in kept))


def write_text(path: str, text: str) -> None:
    """Replace the file at ``path`` with ``text`` atomically (mode kept, ``0640`` for a new file)."""
    _write_atomically(path, text)


def format_line(key: str, value: str, *, path: str) -> str:
    """The config line that reads back as ``key`` and ``value``; :class:`ConfigError` if the pair would
    not stay one line.

    A value the reader would change (surrounding whitespace it strips, matching quotes at both ends it
    drops) is wrapped in double quotes, which the reader drops, as LXC's does.
    """
    check_entry(key, value, path=path)
    line = f"{key} = {value}"
    entry = parse_line(line, path, 1)
    if entry is None or entry.value != value:
        line = f'{key} = "{value}"'
    return line


def _write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    mode = 0o640
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
