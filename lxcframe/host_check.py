"""``lxcframe check`` as a library call: every enabled plugin's host probes, each row with its plugin.

Each plugin's ``lxcframe_check`` is called on its own (through pluggy, so tracing and wrappers still
apply), so that a row carries the plugin it came from and a plugin whose hook raises or returns
something else than :class:`~lxcframe.probe.Probe` objects becomes an unsupported row of its own
instead of taking the whole check down. A disabled or unavailable plugin is not called: its rows are
simply absent, while one that failed to load is a row of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from lxcframe.plugin_manager import FAILED
from lxcframe.probe import Probe, describe

if TYPE_CHECKING:
    from lxcframe.plugin_manager import Plugins

HOOK = "lxcframe_check"


@attrs.frozen
class CheckRow:
    """One host fact as ``check`` shows it."""

    plugin: str
    name: str
    supported: bool
    detail: str
    #: Its absence fails the check (see :class:`~lxcframe.probe.Probe`); a plugin that failed to load
    #: or whose check broke is always required.
    required: bool = True

    @property
    def fails(self) -> bool:
        return self.required and not self.supported

    def as_json(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "name": self.name, "supported": self.supported, "required": self.required,
                "detail": self.detail}


def check_host(plugins: Plugins) -> list[CheckRow]:
    """The rows of every enabled plugin, plugin by plugin in the order they were registered."""
    impls = plugins.hook.lxcframe_check.get_hookimpls()
    by_name = {impl.plugin_name: impl.plugin for impl in impls}
    records = plugins.records()
    # Not probed, but a plugin this host could not load is a problem the check must show.
    rows = [CheckRow(record.name, "plugin", False, f"failed to load: {record.reason}")
            for record in records if record.state == FAILED]
    for name in (record.name for record in records if record.name in by_name):
        others = [plugin for other, plugin in by_name.items() if other != name]
        caller = plugins.pm.subset_hook_caller(HOOK, remove_plugins=others)
        try:
            results = caller()
        except Exception as exc:  # one plugin's failure is its own row, the others still report
            rows.append(CheckRow(name, HOOK, False, f"check failed: {describe(exc)}"))
            continue
        for result in results:
            rows.extend(_rows_of(name, result))
    return _once(rows)


def _once(rows: list[CheckRow]) -> list[CheckRow]:
    """Each fact (plugin, name) once, where it first came: a plugin whose check hook is registered twice
    (a module and its object) or that probes the same fact twice lists it once; if the answers differ, the
    unsupported one stands, with its detail."""
    first: dict[tuple[str, str], int] = {}
    kept: list[CheckRow] = []
    for row in rows:
        key = (row.plugin, row.name)
        if key not in first:
            first[key] = len(kept)
            kept.append(row)
        elif kept[first[key]].supported and not row.supported:
            kept[first[key]] = row
    return kept


def _rows_of(plugin: str, result: object) -> list[CheckRow]:
    if not isinstance(result, (list, tuple)):
        return [CheckRow(plugin, HOOK, False, f"returned {type(result).__name__}, not a list of Probe")]
    rows = []
    for item in result:
        if isinstance(item, Probe) and isinstance(item.supported, bool):
            rows.append(CheckRow(plugin, item.name, item.supported, item.detail, item.required is not False))
        elif isinstance(item, Probe):
            # "no" is a true value: guessing would report a missing feature as supported.
            shown = f"{type(item.supported).__name__} {item.supported!r}"
            rows.append(CheckRow(plugin, item.name, False, f"{item.detail} (supported is {shown}, not a bool)"))
        else:
            rows.append(CheckRow(plugin, HOOK, False, f"returned {type(item).__name__} {item!r}, not a Probe"))
    return rows


def all_supported(rows: list[CheckRow]) -> bool:
    """Every fact of every enabled plugin is supported, the optional ones included."""
    return all(row.supported for row in rows)


def passes(rows: list[CheckRow]) -> bool:
    """What the exit status of ``check`` tells: no required fact is missing (every plugin loaded, every
    check hook answered, every fact a plugin cannot work without is there)."""
    return not any(row.fails for row in rows)
