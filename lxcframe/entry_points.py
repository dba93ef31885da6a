"""Finding the ``lxcframe.plugins`` entry points without importing ``importlib.metadata``.

``importlib.metadata`` costs ~20 ms to import and parses every distribution's metadata; every CLI
command pays for plugin discovery, so this reads ``entry_points.txt`` of the ``*.dist-info`` and
``*.egg-info`` directories on ``sys.path`` directly, in ``sys.path`` order (the first distribution
of a name wins, as with importlib.metadata).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import NamedTuple


# A NamedTuple, not attrs: the command line's thin client reads entry points (for the installation's
# fingerprint) and must not pay attrs' import (~35 ms).
class EntryPoint(NamedTuple):
    name: str
    value: str
    distribution: str
    version: str

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    @property
    def attr(self) -> str | None:
        rest = self.value.partition(":")[2].strip()
        return rest or None


def _normalize(name: str) -> str:
    """PEP 503's normal form (runs of ``-``, ``_`` and ``.`` become one ``-``), without ``re``."""
    parts = name.lower().replace("_", "-").replace(".", "-").split("-")
    return "-".join(part for part in parts if part)


def _metadata_field(directory: str, field: str) -> str | None:
    for leaf in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(directory, leaf), encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if not line.strip():
                        break  # the headers end at the first blank line
                    if line.startswith(f"{field}:"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            continue
    return None


def _section(text: str, group: str) -> Iterator[tuple[str, str]]:
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            inside = line == f"[{group}]"
            continue
        if inside and "=" in line:
            name, _, value = line.partition("=")
            yield name.strip(), value.strip()


def entry_points(group: str, path: Iterable[str] | None = None) -> list[EntryPoint]:
    found: list[EntryPoint] = []
    seen_dists: set[str] = set()
    for base in sys.path if path is None else path:
        try:
            names = sorted(os.listdir(base or "."))
        except OSError:
            continue
        for leaf in names:
            if not leaf.endswith((".dist-info", ".egg-info")):
                continue
            stem = leaf.rsplit(".", 1)[0]
            dist_key = _normalize(stem.split("-", 1)[0])
            if dist_key in seen_dists:
                continue
            seen_dists.add(dist_key)
            directory = os.path.join(base, leaf)
            try:
                with open(os.path.join(directory, "entry_points.txt"), encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                continue
            if f"[{group}]" not in text:
                continue
            dist = _metadata_field(directory, "Name") or stem.split("-", 1)[0]
            version = _metadata_field(directory, "Version") or [*stem.split("-", 1), "?"][1]
            found.extend(EntryPoint(name, value, dist, version) for name, value in _section(text, group))
    return found
