"""The config methods of :class:`lxcframe.container.Container`: reading and writing its ``lxc.*`` keys.

``set_config_item`` writes through to the config file. ``append_config_item``,
``clear_config_item`` and ``clear_config`` edit in memory, as LXC's calls do, until
``save_config``; what the object reads, starts and executes is the file with those edits applied
last (:mod:`lxcframe.config.edits`). Another ``Container`` object of the same container does not
see them: as with LXC, they belong to this object.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lxcframe import state as st
from lxcframe.config.edits import PendingEdits, check_values, effective_config, save_edits, save_flattened
from lxcframe.config.writer import set_item
from lxcframe.container_base import ContainerMixin
from lxcframe.errors import ConfigError, ContainerError

if TYPE_CHECKING:
    from lxcframe.config.model import ContainerConfig

# Edits are replaced whole (PendingEdits is frozen): the lock makes each read-modify-write one step
# when several threads edit the same object.
_EDITS_LOCK = threading.Lock()


class ConfigMethods(ContainerMixin):
    """Reading and writing a container's config keys."""

    #: This object's unsaved edits (none until an edit replaces this class-level default).
    _edits: PendingEdits = PendingEdits()

    # --- reading -------------------------------------------------------------------------------

    def load_config(self) -> ContainerConfig:
        """The config this object sees: the file (includes expanded) with the unsaved edits applied."""
        if not self.defined and not self._edits:
            raise ContainerError(f"{self.name}: no such container (no {self.config_file_name})")
        return effective_config(self.config_file_name, self.plugins.key_registry(), self._edits)

    def get_config_item(self, key: str) -> str | None:
        """The raw text of ``key`` (a repeatable key's values one per line); ``None`` when unset."""
        values = self.get_config_values(key)
        return "\n".join(values) if values else None

    def get_config_values(self, key: str) -> list[str]:
        """Every raw value of ``key``: a list even for a single-valued key, ``[]`` when unset."""
        self._known(key)
        return list(self.load_config().raw_values().get(key, ()))

    def get_keys(self, prefix: str | None = None) -> list[str]:
        """LXC's ``get_keys``: every top-level key, or the keys below ``prefix`` (for ``lxc.net.0``
        those that apply to its type), relative to it."""
        from lxcframe.config.key_listing import sub_keys, top_level_keys

        registry = self.plugins.key_registry()
        if prefix is None:
            return top_level_keys(registry)
        return sub_keys(registry, self.load_config(), prefix)

    def get_running_config_item(self, key: str) -> str | None:
        """The value of ``key`` the running container was started with, whatever its file says now."""
        from lxcframe import started_config

        self._known(key)
        if self.current_state() is None:
            raise ContainerError(f"{self.name}: not running")
        values = started_config.read(self.lxcpath, self.name).get(key)
        return None if values is None else "\n".join(values)

    @property
    def has_unsaved_config(self) -> bool:
        return bool(self._edits)

    # --- writing through -----------------------------------------------------------------------

    def set_config_item(self, key: str, value: str | Sequence[str]) -> None:
        """Write ``key = value`` into the config file; validated first, comments and order kept.

        A list (any sequence but a string) clears the key, then sets each element in turn; for a
        single-valued key it may hold one element at most. Unsaved edits of the key (and of the keys
        below it) are dropped: the file now says what the key is.
        """
        values = [value] if isinstance(value, str) else list(value)
        registry = self.plugins.key_registry()
        multi = check_values(registry, key, values).multi
        if not multi and len(values) > 1:
            raise ConfigError(f"a single-valued key takes one value, not {len(values)}", key=key)
        with st.command_lock(self.lxcpath, self.name):
            if isinstance(value, str):
                set_item(self.config_file_name, key, value, multi=multi)
            else:
                set_item(self.config_file_name, key, "", multi=multi)
                for item in values:
                    set_item(self.config_file_name, key, item, multi=multi)
        with _EDITS_LOCK:
            edits = self._edits.without(key)
            if edits.cleared:  # the file does not count until saved: the new values are edits of their own
                for item in values:
                    edits = edits.add(key, item)
            self._edits = edits

    def set_config_path(self, path: str) -> None:
        """Use the containers directory ``path`` (LXC's config path) from now on; unsaved edits stay."""
        if not path:
            raise ContainerError("the config path must not be empty")
        self.lxcpath = os.path.abspath(path)

    # --- in memory until saved -----------------------------------------------------------------

    def append_config_item(self, key: str, value: str) -> None:
        """Add ``key = value`` after everything (a repeatable key gains a value, any other is replaced)."""
        check_values(self.plugins.key_registry(), key, [value])
        with _EDITS_LOCK:
            self._edits = self._edits.add(key, value)

    def clear_config_item(self, key: str) -> None:
        """Unset ``key`` and every key below it (``lxc.net.0`` drops that network entry)."""
        check_values(self.plugins.key_registry(), key, [""])
        with _EDITS_LOCK:
            self._edits = self._edits.add(key, "")

    def clear_config(self) -> None:
        """Unset every key: until saved, the file no longer counts."""
        with _EDITS_LOCK:
            self._edits = PendingEdits(cleared=True)

    def save_config(self, path: str | None = None) -> None:
        """Without ``path``: write the unsaved edits into the config file (its comments, order and
        includes kept), after which none are pending. With ``path``: write the whole config this
        object sees there as ``key = value`` lines, the container's own file untouched."""
        registry = self.plugins.key_registry()
        if path is not None:
            self.load_config()  # a container with neither a file nor edits has nothing to save
            save_flattened(path, self.config_file_name, registry, self._edits)
            return
        if not os.path.isdir(os.path.dirname(os.path.abspath(self.config_file_name))):
            raise ContainerError(f"{self.name}: no such container (no directory for {self.config_file_name}; "
                                 "create it first)")
        with st.command_lock(self.lxcpath, self.name), _EDITS_LOCK:
            save_edits(self.config_file_name, registry, self._edits)
            self._edits = PendingEdits()

    # --- helpers -------------------------------------------------------------------------------

    def _known(self, key: str) -> None:
        # A key of LXC's that no enabled plugin applies is still read back, as the file holds it.
        registry = self.plugins.key_registry()
        if registry.lookup(key) is None and registry.inactive_owner(key) is None:
            raise ConfigError(registry.why_not_handled(key), key=key)

    def has_api_extension(self, name: str | None) -> bool:
        return bool(self.plugins.has_api_extension(name))
