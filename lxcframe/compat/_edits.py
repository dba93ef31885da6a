"""Where a compat container's in-memory config lives.

A container that exists keeps its unsaved edits in the native object (what ``start()`` sees is the
file plus those edits). One not created yet has no native config to edit: python3-lxc code sets its
keys before ``create()`` (``lxc.net.0.type`` and the like, instead of LXC's ``default.conf``), so
those entries are held here, validated by the same reader as a file's, and become the new
container's config lines at ``create()`` or its file at ``save_config()``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the config reader (attrs classes) is imported when a pending edit needs it
    from lxcframe.config.model import ContainerConfig
    from lxcframe.config.parser import RawEntry


class NativeEdits:
    """The native container's own in-memory edits (``append_config_item``, ``save_config``…)."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def raw(self, key: str) -> str | None:
        return self._native.get_config_item(key)

    def values(self, key: str) -> list[str]:
        return list(self._native.get_config_values(key))

    def append(self, key: str, value: str) -> None:
        self._native.append_config_item(key, value)

    def clear(self, key: str) -> None:
        self._native.clear_config_item(key)

    def clear_all(self) -> None:
        self._native.clear_config()

    def save(self, path: str | None) -> None:
        self._native.save_config(path)


class PendingEdits:
    """The entries of a container not created yet, in the order they were set (an empty value clears)."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self._entries: list[RawEntry] = []

    def _config(self, extra: list[RawEntry] | None = None) -> ContainerConfig:
        from lxcframe.config.model import build_config

        return build_config([*self._entries, *(extra or [])], self._native.plugins.key_registry(), None)

    def raw(self, key: str) -> str | None:
        return self._config().raw(key)

    def values(self, key: str) -> list[str]:
        config = self._config()
        if key in config.multi:
            return [item.raw for item in config.multi[key]]
        value = config.raw(key)
        return [] if value is None else [value]

    def append(self, key: str, value: str) -> None:
        from lxcframe.config.parser import RawEntry

        entry = RawEntry(key, value, "<set_config_item>", len(self._entries) + 1)
        self._config([entry])  # refused here, as a file's line would be, before it is kept
        self._entries.append(entry)

    def clear(self, key: str) -> None:
        self.append(key, "")

    def clear_all(self) -> None:
        self._entries.clear()

    def lines(self) -> tuple[tuple[str, str], ...]:
        """The config as (key, value) pairs, each key's last word kept (what a file would say)."""
        config = self._config()
        pairs = [(key, item.raw) for key, item in config.single.items()]
        for key, items in config.multi.items():
            pairs += [(key, item.raw) for item in items]
        return tuple(pairs)

    def save(self, path: str | None) -> None:
        from lxcframe.config.writer import format_line

        target = path or self._native.config_file_name
        if path is None:
            os.makedirs(self._native.container_dir, mode=0o770, exist_ok=True)
        text = "".join(format_line(key, value, path=target) + "\n" for key, value in self.lines())
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
