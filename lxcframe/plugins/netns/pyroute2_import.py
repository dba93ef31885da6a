"""pyroute2 in two steps: its message classes at once, the rest only where a device is configured.

pyroute2's package body imports every socket family it has (NDB, IPDB, conntrack, nl80211, asyncio,
multiprocessing…) whatever is asked of it: ~170 ms on a cold interpreter, every ``execute`` from the
command line. A container with an ``empty`` network (the default) needs one of pyroute2's message
classes, RTM_NEWNSID's ``nsidmsg``, which with its netlink base costs ~5 ms once lxcframe's own modules
are loaded (measured with ``-X importtime``).

:func:`message_classes` registers the package without running its body, so that its ``netlink``
subpackage imports alone. The package completes itself the first time anything asks it for a name it
has not defined yet (``from pyroute2 import IPRoute``, from our code or anyone else's in the same
process): its own ``__getattr__`` runs the body then, on the same module object, so submodules
imported before stay the ones it uses. :func:`complete` does that on purpose (the network stages that
configure devices, and the supervisor's preload).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable
from types import ModuleType

PACKAGE = "pyroute2"
# Imports of different threads (the library is used from many) must not register or complete twice.
_LOCK = threading.RLock()
_PARTIAL = "__lxcframe_partial__"


def message_classes() -> None:
    """Make ``pyroute2.netlink.*`` importable without running pyroute2's package body."""
    with _LOCK:
        if PACKAGE in sys.modules:
            return
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"No module named {PACKAGE!r}", name=PACKAGE)
        package = importlib.util.module_from_spec(spec)
        setattr(package, _PARTIAL, True)
        package.__getattr__ = _completing_getattr(package)  # type: ignore[method-assign]
        sys.modules[PACKAGE] = package


def complete() -> ModuleType:
    """The whole package, its body run (now, if :func:`message_classes` had held it back)."""
    with _LOCK:
        package = sys.modules.get(PACKAGE)
        if package is None:
            return importlib.import_module(PACKAGE)
        if package.__dict__.pop(_PARTIAL, False):
            del package.__dict__["__getattr__"]
            assert package.__spec__ is not None and package.__spec__.loader is not None
            try:
                package.__spec__.loader.exec_module(package)
            except BaseException:
                setattr(package, _PARTIAL, True)
                package.__getattr__ = _completing_getattr(package)  # type: ignore[method-assign]
                raise
        return package


def is_complete() -> bool:
    package = sys.modules.get(PACKAGE)
    return package is not None and not getattr(package, _PARTIAL, False)


def _completing_getattr(package: ModuleType) -> Callable[[str], object]:
    def __getattr__(name: str) -> object:
        complete()
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None

    return __getattr__
