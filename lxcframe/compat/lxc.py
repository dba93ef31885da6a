"""python3-lxc's module ``lxc``, name for name, over :class:`lxcframe.Container`.

Code written for python3-lxc runs by changing ``import lxc`` to ``import lxcframe.compat.lxc as lxc``:
the same names, the same return conventions (``True``/``False`` rather than exceptions, raw wait
statuses from ``attach_wait``, ``KeyError`` for unknown keys, lists for multi-valued keys) and the
same quirks, which callers came to depend on. ``docs/compat.md`` lists what differs.
"""

from __future__ import annotations

import os
from typing import Any

from lxcframe.compat import _constants
from lxcframe.compat._attach import attach_run_command, attach_run_shell
from lxcframe.compat._constants import *  # noqa: F403  (python3-lxc's constants)
from lxcframe.compat._container import Container
from lxcframe.compat._network import ContainerNetwork, ContainerNetworkList
from lxcframe.compat._shared import module_plugins

__all__ = [
    "Container", "ContainerNetwork", "ContainerNetworkList", "arch_to_personality", "attach_run_command",
    "attach_run_shell", "config_item_is_supported", "get_global_config_item", "has_api_extension",
    "list_containers", "version", *_constants.__all__,
]

#: The LXC release whose API and config format this module answers for (python3-lxc gives liblxc's
#: version here; callers compare it to pick the config keys of LXC 3 and later).
version = "3.1.0"

#: ``lxc.arch`` names and their personality(2) value, as LXC's config parser knows them.
_PERSONALITIES = {
    "x86": 8, "linux32": 8, "i386": 8, "i486": 8, "i586": 8, "i686": 8, "athlon": 8,
    "linux64": 0, "x86_64": 0, "amd64": 0,
}


def __getattr__(name: str) -> Any:
    # Read when asked, not at import: the host config (LXCFRAME_HOST_CONFIG) may change in between.
    if name == "default_config_path":
        return get_global_config_item("lxc.lxcpath")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_global_config_item(key: str) -> str:
    """The host's setting for ``key`` (``lxc.lxcpath``, ``lxc.default_config``); ``KeyError`` for any
    other key, or one without a value, as liblxc."""
    from lxcframe.hostconfig import load_host_config

    if not isinstance(key, str):
        raise TypeError(f"get_global_config_item() argument 1 must be str, not {type(key).__name__}")
    host = load_host_config()
    value = {"lxc.lxcpath": host.lxcpath, "lxc.default_config": host.default_config}.get(key)
    if value is None:
        raise KeyError("Invalid configuration key")
    return value


def arch_to_personality(arch: str | bytes) -> int:
    """personality(2) of an ``lxc.arch`` name; ``KeyError`` for a name LXC does not know."""
    if isinstance(arch, bytes):
        arch = str(arch, "utf-8")
    if not isinstance(arch, str):
        raise ValueError("Expected a string")
    try:
        return _PERSONALITIES[arch]
    except KeyError:
        raise KeyError("Failed to lookup architecture.") from None


def list_containers(active: Any = True, defined: Any = True, as_object: bool = False,
                    config_path: str | None = None) -> tuple[Any, ...]:
    """Names (or :class:`Container` objects) of the containers under ``config_path``.

    Only ``True`` itself selects a filter (python3-lxc checks identity); ``active`` and ``defined``
    together give the union. A ``config_path`` that does not exist gives ``()``.
    """
    from lxcframe import state as st

    path = config_path or get_global_config_item("lxc.lxcpath")
    if not os.path.exists(path):
        return ()
    want_active, want_defined = active is True, defined is True
    names: set[str] = set()
    if want_defined:
        names.update(n for n in os.listdir(path) if os.path.isfile(os.path.join(path, n, "config")))
    if want_active:
        # A running container has a runtime directory, whether or not its config is still there.
        runtime = os.path.dirname(st.runtime_dir(path, "x"))
        candidates = set(os.listdir(runtime)) if os.path.isdir(runtime) else set()
        names.update(n for n in candidates if n not in names and _running(n, path))
    found = tuple(sorted(names))
    if as_object:
        return tuple(Container(name, config_path) for name in found)
    return found


def _running(name: str, path: str) -> bool:
    try:
        return bool(Container(name, path).running)
    except RuntimeError:  # not a container's directory (an invalid name)
        return False


def has_api_extension(name: str) -> bool:
    """Whether lxcframe (its enabled plugins) has LXC's API extension ``name``."""
    return bool(module_plugins().has_api_extension(name))


def config_item_is_supported(key: str) -> bool:
    """Whether ``key`` is a config key some enabled plugin applies."""
    return bool(module_plugins().config_item_is_supported(key))
