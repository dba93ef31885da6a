"""What :class:`lxcframe.container.Container` provides to the mixins its methods are grouped in, declared
once for the type checker (at run time the class holds only the annotations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lxcframe import state as st
    from lxcframe.config.model import ContainerConfig


class ContainerMixin:
    """The base of every mixin of :class:`lxcframe.container.Container`."""

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
        def _running_state(self) -> st.ContainerState: ...
