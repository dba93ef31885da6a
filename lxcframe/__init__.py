"""lxcframe: a Linux container runtime whose every feature is a plugin.

The package imports nothing heavy at import time; ``Container`` and friends load on first use.
"""

from __future__ import annotations

from lxcframe.version import __version__

# Not typing.TYPE_CHECKING: importing typing would cost every ``lxcframe --version`` a few ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lxcframe.container import Container, list_containers
    from lxcframe.plugin_manager import Plugins

__all__ = ["Container", "Plugins", "__version__", "has_api_extension", "list_containers"]

_LAZY = {
    "Container": "lxcframe.container",
    "list_containers": "lxcframe.container",
    "Plugins": "lxcframe.plugin_manager",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lxcframe' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def has_api_extension(name: str | None, plugins: Plugins | None = None) -> bool:
    """Whether this lxcframe, with the plugins enabled on this host, provides API extension ``name``."""
    if plugins is None:
        from lxcframe.plugin_manager import Plugins

        plugins = Plugins()
    return plugins.has_api_extension(name)
