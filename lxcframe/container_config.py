"""The config methods of :class:`lxcframe.container.Container`: reading and writing its ``lxc.*`` keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lxcframe import state as st
from lxcframe.config.writer import set_item
from lxcframe.errors import ConfigError

if TYPE_CHECKING:
    from lxcframe.config.model import ContainerConfig


class ConfigMethods:
    """Reading and writing a container's config keys."""

    # What the Container class this is mixed into provides.
    name: str
    lxcpath: str
    if TYPE_CHECKING:
        @property
        def plugins(self) -> Any: ...
        @property
        def config_file_name(self) -> str: ...
        @property
        def defined(self) -> bool: ...
        def load_config(self) -> ContainerConfig: ...
        def current_state(self) -> st.ContainerState | None: ...

    def get_config_item(self, key: str) -> str | None:
        return self.load_config().raw(key)

    def set_config_item(self, key: str, value: str) -> None:
        """Write ``key = value`` into the config file; validated first, comments and order kept."""
        registry = self.plugins.key_registry()
        spec = registry.lookup(key)
        if spec is None:
            raise ConfigError(registry.why_not_handled(key), key=key, value=value)
        if value:
            try:
                spec.validator(value)
            except ValueError as err:
                raise ConfigError(str(err), key=key, value=value) from None
        with st.command_lock(self.lxcpath, self.name):
            set_item(self.config_file_name, key, value, multi=spec.multi)

    def has_api_extension(self, name: str | None) -> bool:
        return bool(self.plugins.has_api_extension(name))

