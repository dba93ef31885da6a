"""Which code a process runs, told without importing anything heavy: the command line's thin client and
the server it hands commands to must be one installation."""

from __future__ import annotations

import os
import sys

from lxcframe.version import __version__

# Not typing.TYPE_CHECKING: importing typing costs the thin client a few ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def installation() -> list[Any]:
    """Interpreter, lxcframe's location and version, and the module search path (less its first entry,
    the script's or working directory, and lxcframe's own parent, which the server puts first). Equal
    lists import the same modules and find the same plugins."""
    search = [path for path in sys.path[1:] if os.path.realpath(path or ".") != _PACKAGE_PARENT]
    return [sys.executable, _PACKAGE_PARENT, __version__, search]
