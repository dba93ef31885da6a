"""python3-lxc's config calls on a container, over the native in-memory config edits.

python3-lxc's conventions: ``KeyError`` for a key LXC does not know, and for any key while no config
is loaded (a container object whose config file did not exist, until something is set, and after
``clear_config``); a multi-valued key reads back as a list, an unset one as ``""``;
``set_config_item`` clears the key, sets the value (each element of a list), reads it back and
restores the old value when the read-back differs; nothing reaches the file before ``save_config``.
"""

from __future__ import annotations

import os
from typing import Any

from lxcframe.compat._edits import NativeEdits, PendingEdits
from lxcframe.compat._shared import refused
from lxcframe.errors import ConfigError, ContainerError, LxcframeError


class ConfigCalls:
    """The config methods of :class:`lxcframe.compat.lxc.Container`."""

    _native: Any
    #: Whether a config is loaded (liblxc's ``c->lxc_conf``): the file existed when the object was
    #: made, or something was set or loaded since; ``clear_config`` and ``destroy`` drop it.
    _loaded: bool
    _pending: PendingEdits
    name: str

    def _edits(self) -> NativeEdits | PendingEdits:
        return NativeEdits(self._native) if self._native.defined else self._pending

    def _registry(self) -> Any:
        return self._native.plugins.key_registry()

    def _spec(self, key: str) -> Any:
        if not isinstance(key, str):
            raise TypeError(f"argument 1 must be str, not {type(key).__name__}")
        spec = self._registry().lookup(key)
        if spec is None:
            raise KeyError("Invalid configuration key")
        return spec

    def _net_types(self) -> list[str]:
        # LXC 5.0's ``lxc.net`` reads as the type of every network, one per line, in index order.
        found, index = [], 0
        while (kind := self._edits().raw(f"lxc.net.{index}.type")) is not None:
            found.append(kind)
            index += 1
        return found

    def get_config_item(self, key: str) -> Any:
        spec = self._spec(key)
        if not self._loaded:
            raise KeyError("Invalid configuration key")
        try:
            if key == "lxc.net":
                return self._net_types() or ""
            if spec.multi:
                return self._edits().values(key) or ""
            value = self._edits().raw(key)
        except (ConfigError, ContainerError):
            raise KeyError("Invalid configuration key") from None
        return "" if value is None else value

    def _set_raw(self, key: str, value: Any) -> bool:
        """liblxc's setter: appends to a list key, replaces a single one; loads an empty config first."""
        if not isinstance(value, str):
            raise TypeError(f"argument 2 must be str, not {type(value).__name__}")
        try:
            self._edits().append(key, value)
        except LxcframeError as err:
            return refused(self.name, f"setting {key}", err)
        self._loaded = True
        return True

    def append_config_item(self, key: str, value: str) -> bool:
        return self._set_raw(key, value)

    def clear_config_item(self, key: str) -> bool:
        if not self._loaded:
            return False
        try:
            self._edits().clear(key)
        except LxcframeError as err:
            return refused(self.name, f"clearing {key}", err)
        return True

    def _replace(self, key: str, value: Any) -> bool:
        self.clear_config_item(key)
        if isinstance(value, list):
            return all(self._set_raw(key, entry) for entry in value)
        self._set_raw(key, value)
        return True

    def set_config_item(self, key: str, value: Any) -> bool:
        try:
            old = self.get_config_item(key)
        except KeyError:
            old = None
        self._replace(key, value)
        now = self.get_config_item(key)  # python3-lxc lets this KeyError (an unknown key) through
        if key == "lxc.log.level":  # read back as a number whatever name was set
            now = value
        if isinstance(value, str) and isinstance(now, str) and value == now:
            return True
        if isinstance(value, list) and isinstance(now, list) and set(value) == set(now):
            return True
        if isinstance(value, str) and isinstance(now, list) and {value} == set(now):
            return True
        if old:
            self._replace(key, old)
        else:
            self.clear_config_item(key)
        return False

    def clear_config(self) -> None:
        try:
            self._edits().clear_all()
        except LxcframeError as err:
            refused(self.name, "clear_config", err)
        self._loaded = False

    def load_config(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Add the entries of ``path`` (the container's config file by default) to the config in memory."""
        from lxcframe.config.parser import read_entries

        target = os.fspath(path) if path is not None else self._native.config_file_name
        try:
            entries = list(read_entries(target))
        except (LxcframeError, OSError) as err:
            return refused(self.name, f"loading {target}", err)
        edits = self._edits()
        for entry in entries:
            try:
                if entry.value == "":
                    edits.clear(entry.key)
                else:
                    edits.append(entry.key, entry.value)
            except LxcframeError as err:
                return refused(self.name, f"loading {target}", err)
        self._loaded = True
        return True

    def save_config(self, path: str | os.PathLike[str] | None = None) -> bool:
        target = os.fspath(path) if path is not None else None
        try:
            if not self._loaded:
                # As liblxc: with no config loaded the host's default config is what gets saved.
                from lxcframe.create import host_defaults

                edits = self._edits()
                for key, value in host_defaults():
                    edits.append(key, value)
            self._edits().save(target)
        except (LxcframeError, OSError) as err:
            return refused(self.name, "save_config", err)
        self._loaded = True
        return True

    def get_keys(self, key: str | None = None) -> Any:
        try:
            keys = self._native.get_keys(key)
        except (ConfigError, ContainerError):
            raise KeyError("Invalid configuration key") from None
        return list(keys)

    def get_running_config_item(self, key: str) -> str | None:
        """The value the running container started with; ``None`` when stopped, unset or unknown. As
        liblxc's getters print them, each value of a repeatable key ends with a newline."""
        try:
            value = self._native.get_running_config_item(key)
        except LxcframeError:
            return None
        if value is None:
            return None
        spec = self._registry().lookup(key)
        return value + "\n" if spec is not None and spec.multi else value

    def get_config_path(self) -> str:
        return str(self._native.lxcpath)

    def set_config_path(self, path: str) -> bool:
        try:
            self._native.set_config_path(path)
        except (LxcframeError, OSError) as err:
            return refused(self.name, "set_config_path", err)
        return True
