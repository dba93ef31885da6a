"""The parsed container config: immutable, located, and safe to hand across the fork."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from lxcframe.config.keys import KeyRegistry, unhandled_reason
from lxcframe.config.parser import RawEntry, read_entries, read_text
from lxcframe.errors import ConfigError, ConfigErrors
from lxcframe.frozen import frozen_mapping


@attrs.frozen
class ConfigValue:
    """A validated value with the line it came from."""

    key: str
    raw: str
    value: Any
    path: str
    line: int
    plugin: str


@attrs.frozen
class Unhandled:
    """A key LXC defines that no enabled plugin handles (``plugin`` is the one that would, "" when none
    does yet); kept so the user is told, not ignored."""

    key: str
    value: str
    path: str
    line: int
    plugin: str
    why: str
    #: An enabled plugin that applies the key anyway (a shared key whose declaring plugin is off).
    applied_by: str = ""

    def describe(self) -> str:
        also = f" (applied by plugin {self.applied_by!r})" if self.applied_by else ""
        return f"{self.path}:{self.line}: {self.key}: {unhandled_reason(self.plugin, self.why)}{also}"

    def as_error(self, opt_out: str = "") -> ConfigError:
        """The refusal a start and ``config validate`` give by default: as LXC, a key that cannot be
        applied stops the start rather than running the container without it (a seccomp profile
        whose plugin is off would otherwise mean an unconfined container)."""
        return ConfigError(
            f"{unhandled_reason(self.plugin, self.why)}: the container would run without it{opt_out}",
            path=self.path, line=self.line, key=self.key,
        )



@attrs.frozen
class ContainerConfig:
    """A container's whole config, every include expanded and every value validated."""

    path: str | None
    single: Mapping[str, ConfigValue] = attrs.field(converter=frozen_mapping)
    multi: Mapping[str, tuple[ConfigValue, ...]] = attrs.field(converter=frozen_mapping)
    unhandled: tuple[Unhandled, ...] = ()

    def refuse_unhandled(self, opt_out: str = "") -> None:
        """Raise every unhandled key together (file, line, key and plugin each); ``opt_out`` says how
        an operator can let such a config start anyway."""
        refused = [item.as_error(opt_out) for item in self.unhandled if not item.applied_by]
        if refused:
            raise ConfigErrors(refused)

    def get(self, key: str, default: Any = None) -> Any:
        item = self.single.get(key)
        return default if item is None else item.value

    def get_all(self, key: str) -> tuple[Any, ...]:
        return tuple(item.value for item in self.multi.get(key, ()))

    def raw(self, key: str) -> str | None:
        """The text LXC's ``get_config_item`` gives: a multi key's values one per line."""
        if key in self.single:
            return self.single[key].raw
        if key in self.multi:
            return "\n".join(item.raw for item in self.multi[key])
        return None

    def raw_values(self) -> dict[str, tuple[str, ...]]:
        """Every key's raw values (one for a single-valued key), the keys no enabled plugin handles
        included: what the config says, as it would be written back."""
        values: dict[str, tuple[str, ...]] = {key: (item.raw,) for key, item in self.single.items()}
        values.update((key, tuple(item.raw for item in items)) for key, items in self.multi.items())
        for item in self.unhandled:
            # Whether such a key repeats is not known here: every value is kept, and an empty one
            # clears the key and those below it, as for any key.
            if item.value:
                values[item.key] = (*values.get(item.key, ()), item.value)
                continue
            for name in [name for name in values if name == item.key or name.startswith(item.key + ".")]:
                if name not in self.single and name not in self.multi:
                    del values[name]
        return values

    def located(self, key: str) -> ConfigValue | None:
        item = self.single.get(key)
        if item is None and self.multi.get(key):
            item = self.multi[key][-1]
        return item

    def where(self, key: str) -> str:
        """``"FILE:LINE: "`` of the line that set ``key`` (``"FILE: "`` if none did), for messages."""
        item = self.located(key)
        if item is not None:
            return f"{item.path}:{item.line}: "
        return f"{self.path}: " if self.path else ""

    def keys(self) -> Iterator[str]:
        yield from self.single
        yield from self.multi

    def keys_under(self, prefix: str) -> list[str]:
        return sorted(k for k in self.keys() if k.startswith(prefix))

    def indexes(self, prefix: str) -> list[int]:
        """Indexes used under ``prefix`` (``"lxc.net."`` → ``[0, 1]``)."""
        pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
        found = {int(m.group(1)) for k in self.keys() if (m := pattern.match(k))}
        return sorted(found)


def build_config(entries: Iterable[RawEntry], registry: KeyRegistry, path: str | None) -> ContainerConfig:
    """Validate raw entries against the registry; every problem is collected, then raised together."""
    single: dict[str, ConfigValue] = {}
    multi: dict[str, list[ConfigValue]] = {}
    unhandled: list[Unhandled] = []
    errors: list[ConfigError] = []
    for entry in entries:
        spec = registry.lookup(entry.key)
        if spec is None:
            owner = registry.inactive_owner(entry.key)
            if owner is not None:
                plugin, why = owner
                unhandled.append(Unhandled(entry.key, entry.value, entry.path, entry.line, plugin, why,
                                           registry.applied_by(entry.key)))
                continue
            errors.append(ConfigError(registry.why_not_handled(entry.key), path=entry.path, line=entry.line,
                                      key=entry.key, value=entry.value))
            continue
        if entry.value == "":
            _clear(entry.key, single, multi)
            continue
        try:
            value = spec.validator(entry.value)
        except ValueError as err:
            errors.append(ConfigError(str(err), path=entry.path, line=entry.line, key=entry.key, value=entry.value))
            continue
        item = ConfigValue(entry.key, entry.value, value, entry.path, entry.line, spec.plugin)
        if spec.multi:
            multi.setdefault(entry.key, []).append(item)
        else:
            single[entry.key] = item
    if errors:
        raise ConfigErrors(errors)
    return ContainerConfig(
        path=path,
        single=single,
        multi={k: tuple(v) for k, v in multi.items() if v},
        unhandled=tuple(unhandled),
    )


def _clear(key: str, single: dict[str, ConfigValue], multi: dict[str, list[ConfigValue]]) -> None:
    # An empty value resets the key and everything below it (``lxc.net =`` drops every network).
    below = key + "."
    for table in (single, multi):
        for name in [k for k in table if k == key or k.startswith(below)]:
            del table[name]


def load_config(path: str, registry: KeyRegistry, extra: Iterable[tuple[str, str]] = ()) -> ContainerConfig:
    """Read and validate the config file at ``path``; ``extra`` (key, value) pairs are applied last."""
    entries: list[RawEntry] = list(read_entries(path))
    entries.extend(RawEntry(k, v, "<override>", n) for n, (k, v) in enumerate(extra, start=1))
    return build_config(entries, registry, path)


def load_text(text: str, registry: KeyRegistry, path: str = "<string>") -> ContainerConfig:
    return build_config(read_text(text, path), registry, path)
