"""``lxcframe config keys``: every config key, the plugin that owns it and what it means."""

from __future__ import annotations

from typing import Any

import attrs

from lxcframe.errors import PluginError


@attrs.frozen
class KeyRow:
    """One line of the listing: a key (or key pattern) and its owner."""

    key: str
    plugin: str
    #: Repeatable (every occurrence adds a value).
    multi: bool
    doc: str
    #: ``enabled``, or why the owning plugin does not handle it here ("is disabled on this host").
    state: str


def key_rows(plugins: Any, only_plugin: str | None = None) -> list[KeyRow]:
    """The keys of the enabled plugins, then those of plugins that are not enabled, sorted by key.

    Keys of a plugin that is enabled but does not support them yet (LXC keys not implemented) are
    left out: they are in no plugin's declarations. ``only_plugin`` that no plugin is called is an
    error naming it.
    """
    registry = plugins.key_registry()
    rows = [KeyRow(spec.name, spec.plugin, spec.multi, spec.doc, "enabled") for spec in registry.specs()]
    # A key of a plugin that is not enabled may be known twice (its declaration and LXC's key list).
    rows += list(dict.fromkeys(KeyRow(name, plugin, False, "", why) for name, plugin, why in registry.inactive()
                               if not plugins.is_enabled(plugin)))
    if only_plugin is not None:
        known = {record.name for record in plugins.records()} | {row.plugin for row in rows}
        if only_plugin not in known:
            from lxcframe.config.keys import closest

            hint = closest(only_plugin, known)
            raise PluginError(f"config keys --plugin {only_plugin}: no plugin named {only_plugin!r}"
                              + (f" (did you mean {hint!r}?)" if hint else ""))
        rows = [row for row in rows if row.plugin == only_plugin]
    return sorted(rows, key=lambda row: (row.key, row.plugin))


def as_json(rows: list[KeyRow]) -> list[dict[str, Any]]:
    return [attrs.asdict(row) for row in rows]


def as_text(rows: list[KeyRow]) -> str:
    """``KEY  PLUGIN  DOC``; a repeatable key says so, a key of a plugin not enabled says why."""
    from lxcframe.cli.table import table

    def doc(row: KeyRow) -> str:
        if row.state != "enabled":
            return f"(plugin {row.state})"
        return f"{row.doc} [repeatable]" if row.multi else row.doc

    return table(["KEY", "PLUGIN", "DOC"], [[row.key, row.plugin, doc(row)] for row in rows])
