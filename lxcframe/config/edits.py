"""Config edits held in memory until saved, as LXC's in-memory config is: the file plus these edits.

``append_config_item``, ``clear_config_item`` and ``clear_config`` of
:class:`lxcframe.container.Container` change nothing on disk; they add to a :class:`PendingEdits`.
What the container reads (``get_config_item``, ``start``, ``execute``) is the file's entries
followed by the edits, exactly as :func:`lxcframe.config.model.load_config` applies its ``extra``
pairs: a later value of a single-valued key wins, a repeatable key gains a value, an empty value
clears the key and everything below it. ``clear_config`` drops the file's entries altogether.

Saving writes the edits into the config file through :func:`lxcframe.config.writer.set_item`, so its
comments, order and includes stay. The result is built on a scratch copy beside the file (relative
includes resolve the same) and read back before it replaces the file: when it does not read as the
container saw it (an included file sets an edited key again), the edits are appended as lines after
everything instead, which reads back right by construction. Nothing is saved wrongly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable

import attrs

from lxcframe.config.keys import KeyRegistry, KeySpec
from lxcframe.config.model import ContainerConfig, build_config
from lxcframe.config.parser import RawEntry, check_entry, read_entries
from lxcframe.config.writer import TMP_PREFIX, format_line, remove_entries, set_item, write_text
from lxcframe.errors import ConfigError

#: The "file" an edit's entry names in messages: it is in no file yet.
UNSAVED = "<unsaved edit>"


@attrs.frozen
class PendingEdits:
    """What was changed in memory since the config file was last written by this object."""

    #: ``clear_config`` was called: the file's entries no longer count, only the pairs.
    cleared: bool = False
    #: ``(key, value)`` in the order made; an empty value clears the key and what is below it.
    pairs: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return self.cleared or bool(self.pairs)

    def add(self, key: str, value: str) -> PendingEdits:
        return attrs.evolve(self, pairs=(*self.pairs, (key, value)))

    def without(self, key: str) -> PendingEdits:
        """These edits less those of ``key`` and of every key below it (a write-through replaced them)."""
        below = key + "."
        return attrs.evolve(self, pairs=tuple((k, v) for k, v in self.pairs
                                              if k != key and not k.startswith(below)))

    def entries(self) -> list[RawEntry]:
        return [RawEntry(key, value, UNSAVED, number) for number, (key, value) in enumerate(self.pairs, start=1)]


def effective_entries(path: str, edits: PendingEdits) -> list[RawEntry]:
    """The file's entries (includes expanded; none after ``clear_config`` or when there is no file)
    followed by the edits'."""
    entries: list[RawEntry] = []
    if not edits.cleared and os.path.lexists(path):
        entries.extend(read_entries(path))
    entries.extend(edits.entries())
    return entries


def effective_config(path: str, registry: KeyRegistry, edits: PendingEdits) -> ContainerConfig:
    """What the container sees: the file at ``path`` with ``edits`` applied last."""
    return build_config(effective_entries(path, edits), registry, path)


def save_edits(path: str, registry: KeyRegistry, edits: PendingEdits) -> None:
    """Write ``edits`` into the config file at ``path``, keeping its comments, order and includes.

    Each edit goes where ``config set`` would put it (a single-valued key replaced in place, a value of
    a repeatable key after its last one). Where an included file then sets the key again, or would
    come between the values, that file does not read as the container saw it: the edits are written
    as lines appended after everything instead, which the reader applies last, as they were.
    """
    expected = effective_config(path, registry, edits).raw_values()
    directory = os.path.dirname(os.path.abspath(path))
    fd, scratch = tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
    try:
        os.close(fd)
        _copy(path, scratch, edits)
        for key, value in edits.pairs:
            spec = registry.lookup(key)
            set_item(scratch, key, value, multi=spec is not None and spec.multi)
        if build_config(read_entries(scratch), registry, path).raw_values() != expected:
            _copy(path, scratch, edits)
            with open(scratch, encoding="utf-8") as handle:
                text = handle.read()
            if text and not text.endswith("\n"):
                text += "\n"
            write_text(scratch, text + "".join(format_line(key, value, path=path).rstrip() + "\n"
                                               for key, value in edits.pairs))
        mode = 0o640
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(path).st_mode & 0o7777
        os.chmod(scratch, mode)
        os.replace(scratch, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)
        raise


def _copy(path: str, scratch: str, edits: PendingEdits) -> None:
    """The file at ``path`` (nothing if there is none) onto ``scratch``; without its entries after
    ``clear_config``."""
    with open(scratch, "wb") as handle, contextlib.suppress(FileNotFoundError), open(path, "rb") as current:
        shutil.copyfileobj(current, handle)
    if edits.cleared:
        remove_entries(scratch, shown=path)


def save_flattened(target: str, path: str, registry: KeyRegistry, edits: PendingEdits) -> None:
    """Write the whole config the container sees to ``target`` as ``key = value`` lines, includes
    expanded, in the order each key first appears."""
    entries = effective_entries(path, edits)
    values = build_config(entries, registry, path).raw_values()
    order: dict[str, int] = {}
    for index, entry in enumerate(entries):
        order.setdefault(entry.key, index)
    lines = [format_line(key, value, path=target)
             for key in sorted(values, key=lambda name: order.get(name, len(order)))
             for value in values[key]]
    write_text(target, "".join(line + "\n" for line in lines))


def check_values(registry: KeyRegistry, key: str, values: Iterable[str]) -> KeySpec:
    """The spec of ``key`` when an enabled plugin handles it and every non-empty value passes its
    validator; a :class:`ConfigError` naming the key (and the value) otherwise."""
    spec = registry.lookup(key)
    if spec is None:
        raise ConfigError(registry.why_not_handled(key), key=key)
    for value in values:
        check_entry(key, value)
        if value:
            try:
                spec.validator(value)
            except ValueError as err:
                raise ConfigError(str(err), key=key, value=value) from None
    return spec
