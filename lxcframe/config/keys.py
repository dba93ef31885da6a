"""Config keys as plugins declare them, and the registry that matches a key to its owner.

A key name is exact (``lxc.uts.name``), indexed (``lxc.net.<N>.type``: ``<N>`` is a decimal
index) or a namespace (``lxc.cgroup2.*``: any non-empty rest). Each key has a validator that
turns the raw string into a value or raises :class:`ValueError` with the reason.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

import attrs

Validator = Callable[[str], Any]


def _text(value: str) -> str:
    return value


@attrs.frozen
class KeySpec:
    """One config key (or key pattern) owned by a plugin."""

    name: str
    validator: Validator = _text
    #: Repeatable: every occurrence adds a value (``lxc.mount.entry``); an empty value clears the list.
    multi: bool = False
    doc: str = ""
    #: Filled by the registry: the entry-point name of the plugin that declared the key.
    plugin: str = ""
    #: Plugins that apply the key too, reading it from the config's unhandled keys when the declaring
    #: plugin is disabled (a key can be declared once only): then it is not refused as unapplied.
    shared_with: tuple[str, ...] = ()

    @property
    def is_pattern(self) -> bool:
        return "<N>" in self.name or self.name.endswith(".*")

    def matches(self, key: str) -> bool:
        """Whether ``key`` is this key, or an instance of this pattern.

        Segment by segment rather than with a regular expression: a registry holds a few hundred
        patterns and compiling them cost every command ~30 ms.
        """
        return _matches(self.name, key)


def _matches(pattern: str, key: str) -> bool:
    if "<N>" not in pattern and not pattern.endswith(".*"):
        return pattern == key
    parts = pattern.split(".")
    open_ended = parts[-1] == "*"
    if open_ended:
        parts = parts[:-1]
    segments = key.split(".")
    # An open-ended key too short for its pattern fails below: what would follow the parts is empty.
    if not open_ended and len(segments) != len(parts):
        return False
    for want, have in zip(parts, segments, strict=False):
        if want == "<N>":
            if not (have.isascii() and have.isdigit()) or (len(have) > 1 and have[0] == "0"):
                return False
        elif want != have:
            return False
    if open_ended:
        rest = ".".join(segments[len(parts):])
        return bool(rest) and not any(ch.isspace() for ch in rest)
    return True


class KeyRegistry:
    """All keys the enabled plugins declared, plus the keys of plugins that are not enabled.

    Lookup is by exact name first, then by pattern, most specific (longest) pattern first.
    """

    def __init__(self) -> None:
        self._exact: dict[str, KeySpec] = {}
        self._patterns: list[KeySpec] = []
        # Keys known but handled by no enabled plugin: name or pattern, plugin, why not enabled.
        self._inactive: list[tuple[str, str, str]] = []
        # Of those, the ones another enabled plugin applies anyway: name or pattern -> that plugin.
        self._applied_by: dict[str, str] = {}

    def add(self, spec: KeySpec) -> None:
        existing = self._exact.get(spec.name) or next(
            (s for s in self._patterns if s.name == spec.name), None
        )
        if existing is not None:
            raise ValueError(
                f"config key {spec.name!r} declared by both {existing.plugin!r} and {spec.plugin!r}"
            )
        if spec.is_pattern:
            self._patterns.append(spec)
            self._patterns.sort(key=lambda item: len(item.name), reverse=True)
        else:
            self._exact[spec.name] = spec

    def add_inactive(self, name: str, plugin: str, why: str, applied_by: str = "") -> None:
        """Record a key that ``plugin`` would handle if it were enabled (``why`` says why not);
        ``applied_by`` names an enabled plugin that applies it all the same."""
        self._inactive.append((name, plugin, why))
        if applied_by:
            self._applied_by.setdefault(name, applied_by)

    def applied_by(self, key: str) -> str:
        """The enabled plugin that applies an unhandled ``key`` anyway ("" if none does)."""
        best = max((name for name in self._applied_by if _matches(name, key)), key=len, default=None)
        return "" if best is None else self._applied_by[best]

    def lookup(self, key: str) -> KeySpec | None:
        spec = self._exact.get(key)
        if spec is not None:
            return spec
        for pattern_spec in self._patterns:
            if pattern_spec.matches(key):
                return pattern_spec
        return None

    def inactive_owner(self, key: str) -> tuple[str, str] | None:
        """(plugin, why) for a key no enabled plugin handles but a known plugin would."""
        best: tuple[int, str, str] | None = None
        for name, plugin, why in self._inactive:
            if _matches(name, key) and (best is None or len(name) > best[0]):
                best = (len(name), plugin, why)
        return None if best is None else (best[1], best[2])

    def suggest(self, key: str) -> str | None:
        """The closest declared key name, for a "did you mean" hint."""
        candidates = list(self._exact)
        for spec in self._patterns:
            # Offer the pattern with a concrete index so the hint reads like a real key.
            candidates.append(spec.name.replace("<N>", "0").removesuffix(".*"))
        return closest(key, candidates)

    def why_not_handled(self, key: str) -> str:
        """Why ``key`` has no enabled owner: whose it would be, or that it is unknown (with a hint)."""
        owner = self.inactive_owner(key)
        if owner is not None:
            return unhandled_reason(*owner)
        hint = self.suggest(key)
        return "unknown key" + (f" (did you mean {hint!r}?)" if hint else "")

    def specs(self) -> Iterable[KeySpec]:
        yield from self._exact.values()
        yield from self._patterns

    def inactive(self) -> Iterable[tuple[str, str, str]]:
        """(name or pattern, plugin, why not enabled) of every key known but handled by no enabled plugin."""
        yield from self._inactive


def unhandled_reason(plugin: str, why: str) -> str:
    """Why a known key is not applied: its plugin and why that one is not enabled, or, with no plugin
    (one of LXC's keys no plugin handles), ``why`` alone."""
    return f"handled by plugin {plugin!r}, which {why}" if plugin else why


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` is most likely a typo of, for a "did you mean" hint (None if none is close)."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return matches[0] if matches else None


# --- validators ------------------------------------------------------------------------------------


def boolean01(value: str) -> bool:
    """LXC's 0/1 flags."""
    if value in ("0", "1"):
        return value == "1"
    raise ValueError("expected 0 or 1")


def uint(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError("expected an unsigned integer") from None
    if number < 0:
        raise ValueError("expected an unsigned integer")
    return number


def integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("expected an integer") from None


def choice(*allowed: str) -> Validator:
    def validate(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value

    return validate


def absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("expected an absolute path")
    return value


def words(value: str) -> tuple[str, ...]:
    """Whitespace-separated words (``lxc.cap.drop = sys_module mac_admin``)."""
    return tuple(value.split())
