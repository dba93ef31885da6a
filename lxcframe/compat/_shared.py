"""What the compat modules share: one plugin manager for module-level calls, and how a refusal is
told (python3-lxc returns ``False``; the reason goes to the log, as liblxc's does)."""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_plugins: Any = None


def module_plugins() -> Any:
    """The default plugins, made once, for calls that have no container (``has_api_extension``…)."""
    global _plugins
    with _lock:
        if _plugins is None:
            from lxcframe.plugin_manager import Plugins

            _plugins = Plugins()
        return _plugins


def refused(name: str, what: str, err: BaseException) -> bool:
    """Log why ``what`` failed for container ``name`` and give python3-lxc's answer, ``False``."""
    from lxcframe.log import get_logger

    get_logger("compat").error(f"{what} failed", container=name, reason=str(err))
    return False
