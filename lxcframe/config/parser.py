"""Reading LXC's ``key = value`` files into located raw entries, following ``lxc.include``.

This module knows the syntax only; which keys exist and what values mean is the registry's business
(:mod:`lxcframe.config.keys`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import attrs

from lxcframe.errors import ConfigError
from lxcframe.input_limits import (
    MAX_BYTES_PER_LOAD,
    MAX_FILES_PER_LOAD,
    MAX_INCLUDE_DEPTH,
    InputRefused,
    decode_lines,
    read_bounded,
)

INCLUDE_KEY = "lxc.include"
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")


@attrs.frozen
class RawEntry:
    """One ``key = value`` line, with where it came from.

    Built from a file's line or from pairs held in memory (overrides, ``create``'s lines); either way
    it must be able to stand as one line of a config file, so it is checked here, once for all.
    """

    key: str
    value: str
    path: str
    line: int

    def __attrs_post_init__(self) -> None:
        check_entry(self.key, self.value, path=self.path, line=self.line)


def check_entry(key: str, value: str, *, path: str | None = None, line: int | None = None) -> None:
    """Refuse a key or value that could not be written as the single line ``key = value``.

    A line break (anything :meth:`str.splitlines` splits on, as the reader does) in a value written
    to a file would start another line: a key no validator has seen, ``lxc.hook.*`` run as root. LXC
    reads lines as C strings, so a NUL would cut the value short there. The key is shown with repr:
    it is the part that could break the one-line error message itself.
    """
    if not _KEY_RE.match(key):
        raise ConfigError(f"malformed key {key!r}", path=path, line=line)
    # splitlines gives [] for "" and [value] for one line: anything else held a line break.
    if "\0" in value or value.splitlines() not in ([], [value]):
        raise ConfigError("a config value must fit on one line (no line break or NUL)", path=path, line=line,
                          key=key, value=value)
    try:
        value.encode()
    except UnicodeEncodeError:
        # A lone surrogate (what Python makes of undecodable bytes in argv): no file could hold it.
        raise ConfigError("a config value must be UTF-8 text", path=path, line=line, key=key,
                          value=value) from None


def _strip_quotes(value: str) -> str:
    # LXC accepts a value wrapped in matching single or double quotes and drops them.
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_line(text: str, path: str, lineno: int) -> RawEntry | None:
    """Parse one line; ``None`` for blank lines and comments."""
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    key, sep, value = stripped.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError("expected 'key = value'", path=path, line=lineno, key=key)
    if not _KEY_RE.match(key):
        raise ConfigError("malformed key", path=path, line=lineno, key=key, value=value.strip())
    return RawEntry(key=key, value=_strip_quotes(value.strip()), path=path, line=lineno)


class _Budget:
    """What one config load has read so far, against the caps of :mod:`lxcframe.input_limits`."""

    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0

    def charge(self, size: int) -> str | None:
        """Count one more file of ``size`` bytes; what is exceeded, if anything."""
        self.files += 1
        self.bytes += size
        if self.files > MAX_FILES_PER_LOAD:
            return f"more than {MAX_FILES_PER_LOAD} files in one config load"
        if self.bytes > MAX_BYTES_PER_LOAD:
            return f"more than {MAX_BYTES_PER_LOAD} bytes in one config load"
        return None


def read_entries(path: str) -> Iterator[RawEntry]:
    """Yield every entry of ``path`` in file order, with includes expanded in place."""
    yield from _read(os.path.abspath(path), stack=(), origin=None, budget=_Budget())


def read_text(text: str, path: str = "<string>") -> Iterator[RawEntry]:
    """Like :func:`read_entries` for text held in memory (includes are still read from disk)."""
    yield from _entries_of(text.splitlines(), path, stack=(path,), budget=_Budget())


def _read(path: str, stack: tuple[str, ...], origin: RawEntry | None, budget: _Budget) -> Iterator[RawEntry]:
    real = os.path.realpath(path)
    if real in stack:
        chain = " -> ".join((*stack, real))
        raise _at(origin, f"include loop: {chain}", path)
    if len(stack) > MAX_INCLUDE_DEPTH:
        raise _at(origin, f"includes nested deeper than {MAX_INCLUDE_DEPTH} levels", path)
    try:
        data = read_bounded(path)
        exceeded = budget.charge(len(data))
        if exceeded:
            raise InputRefused(exceeded)
        lines = decode_lines(data)
    except InputRefused as err:
        raise _at(origin, str(err), path) from None
    except FileNotFoundError:
        raise _at(origin, "no such file", path) from None
    except PermissionError:
        raise _at(origin, "permission denied", path) from None
    except UnicodeDecodeError as err:
        raise _at(origin, f"not UTF-8 text ({err.reason} at byte {err.start})", path) from None
    except OSError as err:
        raise _at(origin, err.strerror or str(err), path) from None
    yield from _entries_of(lines, path, (*stack, real), budget)


def _entries_of(lines: list[str], path: str, stack: tuple[str, ...], budget: _Budget) -> Iterator[RawEntry]:
    for lineno, text in enumerate(lines, start=1):
        entry = parse_line(text, path, lineno)
        if entry is None:
            continue
        if entry.key == INCLUDE_KEY:
            yield from _include(entry, stack, budget)
        else:
            yield entry


def _include(entry: RawEntry, stack: tuple[str, ...], budget: _Budget) -> Iterator[RawEntry]:
    target = entry.value
    if not target:
        raise ConfigError("include needs a path", path=entry.path, line=entry.line, key=entry.key, value="")
    if not os.path.isabs(target):
        target = os.path.join(os.path.dirname(os.path.abspath(entry.path)), target)
    if os.path.isdir(target):
        try:
            names = sorted(n for n in os.listdir(target) if n.endswith(".conf"))
        except OSError as err:
            raise _at(entry, err.strerror or str(err), target) from None
        for name in names:
            yield from _read(os.path.join(target, name), stack, entry, budget)
    elif target.endswith("/") and not os.path.lexists(target.rstrip("/")):
        # As LXC 5: an include naming a directory (trailing '/') that does not exist adds nothing.
        # Debian's userns.conf includes userns.conf.d/, which no package ships. A missing file is an error.
        return
    else:
        yield from _read(target, stack, entry, budget)


def _at(origin: RawEntry | None, message: str, path: str) -> ConfigError:
    if origin is None:
        return ConfigError(message, path=path)
    return ConfigError(
        f"cannot include {path}: {message}",
        path=origin.path,
        line=origin.line,
        key=origin.key,
        value=origin.value,
    )
