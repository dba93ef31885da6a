"""What the bundle translators share: the keys translated so far, the problems found, typed field access.

Every problem is an error at its JSON field (``config.json: linux.devices[2].major: expected …``); all of
them are collected and raised together, as a config file's are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from lxcframe.config.parser import check_entry
from lxcframe.errors import ConfigError, ConfigErrors
from lxcframe.oci.bundle_json import JsonDoc

#: The reason a field is refused when no plugin applies it.
NOT_APPLIED = "not supported: no lxcframe plugin applies this field"


@attrs.frozen
class Entry:
    """One translated ``key = value`` and the JSON field it came from."""

    key: str
    value: str
    field: str


@attrs.frozen
class StateFile:
    """A file a translation needs beside the config (a seccomp policy), written to the state directory."""

    name: str
    text: str


def field_error(config_path: str, field: str, why: str) -> ConfigError:
    """``config.json: FIELD: why``."""
    return ConfigError(why, path=config_path, key=field)


def join(field: str, name: str) -> str:
    return f"{field}.{name}" if field else name


class Translation:
    """The keys translated so far and the problems found, each at its field."""

    def __init__(self, doc: JsonDoc, directory: str, state_dir: str | None) -> None:
        self.doc = doc
        #: The bundle directory, absolute.
        self.directory = directory
        self.state_dir = state_dir
        self.entries: list[Entry] = []
        self.files: list[StateFile] = []
        self.errors: list[ConfigError] = []
        #: The root filesystem (absolute), once ``root`` is read.
        self.rootfs = ""
        #: LXC's names of the namespaces the container gets of its own.
        self.new_namespaces: set[str] = set()
        #: ``process.user.uid`` (0 when absent or wrong: the other errors say why).
        self.uid = 0

    def add(self, key: str, value: str, field: str) -> None:
        try:
            check_entry(key, value)
        except ConfigError as err:
            self.fail(field, err.reason)
            return
        self.entries.append(Entry(key, value, field))

    def values_of(self, key: str) -> list[str]:
        return [entry.value for entry in self.entries if entry.key == key]

    def fail(self, field: str, why: str) -> None:
        self.errors.append(field_error(self.doc.path, field, why))

    def raise_errors(self) -> None:
        if self.errors:
            raise ConfigErrors(self.errors)

    # --- typed access: a wrong type is an error at its field, and the caller gets None --------------

    def object_at(self, field: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(field or "(document)", "expected a JSON object")
            return {}
        return value

    def get(self, parent: dict[str, Any], name: str, field: str, kind: type, what: str) -> Any:
        """``parent[name]`` if it is a ``kind`` (None when absent, null or wrong, the last reported)."""
        value = parent.get(name)
        if value is None:
            return None
        # JSON's true is no number, though Python's bool is an int.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(join(field, name), f"expected {what}")
            return None
        return value

    def string(self, parent: dict[str, Any], name: str, field: str) -> str | None:
        value: str | None = self.get(parent, name, field, str, "a string")
        return value

    def boolean(self, parent: dict[str, Any], name: str, field: str) -> bool | None:
        value: bool | None = self.get(parent, name, field, bool, "true or false")
        return value

    def integer(self, parent: dict[str, Any], name: str, field: str, low: int = -(2**63),
                high: int = 2**64 - 1) -> int | None:
        value: int | None = self.get(parent, name, field, int, "an integer")
        if value is not None and not low <= value <= high:
            self.fail(join(field, name), f"{value}: expected {low} to {high}")
            return None
        return value

    def uint(self, parent: dict[str, Any], name: str, field: str, bits: int = 32) -> int | None:
        return self.integer(parent, name, field, 0, 2**bits - 1)

    def obj(self, parent: dict[str, Any], name: str, field: str) -> dict[str, Any]:
        """``parent[name]`` as an object ({} when absent or wrong)."""
        value: dict[str, Any] | None = self.get(parent, name, field, dict, "a JSON object")
        return value or {}

    def array(self, parent: dict[str, Any], name: str, field: str) -> list[Any]:
        value: list[Any] | None = self.get(parent, name, field, list, "a JSON array")
        return value or []

    def objects(self, parent: dict[str, Any], name: str, field: str) -> list[tuple[str, dict[str, Any]]]:
        """Each item of the array ``parent[name]`` that is an object, with its field path."""
        found = []
        for index, item in enumerate(self.array(parent, name, field)):
            at = f"{join(field, name)}[{index}]"
            if isinstance(item, dict):
                found.append((at, item))
            else:
                self.fail(at, "expected a JSON object")
        return found

    def strings(self, parent: dict[str, Any], name: str, field: str) -> list[tuple[str, str]]:
        """Each string of the array ``parent[name]``, with its field path."""
        found = []
        for index, item in enumerate(self.array(parent, name, field)):
            at = f"{join(field, name)}[{index}]"
            if isinstance(item, str):
                found.append((at, item))
            else:
                self.fail(at, "expected a string")
        return found

    def refuse_unknown(self, parent: dict[str, Any], field: str, known: Iterable[str]) -> None:
        """A field no translation reads is refused, not dropped: the container would run without it.
        A null or empty one asks for nothing and passes."""
        allowed = set(known)
        for name, value in parent.items():
            if name not in allowed and not is_empty(value):
                self.fail(join(field, name), NOT_APPLIED)

    def refuse_present(self, parent: dict[str, Any], name: str, field: str, why: str) -> None:
        if not is_empty(parent.get(name)):
            self.fail(join(field, name), why)


def is_empty(value: Any) -> bool:
    return value is None or value in ("", [], {})
