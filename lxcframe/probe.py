"""A host fact for ``lxcframe check``, and the guard every probe runs under.

Each plugin probes what it needs in its own ``lxcframe_check`` hook and returns :class:`Probe`
objects. A probe never raises: a check command must report everything it can, so any failure is
turned into ``supported=False`` with the reason in ``detail``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec

import attrs

_Args = ParamSpec("_Args")


@attrs.frozen
class Probe:
    """One host fact: what was checked, whether it is usable, and why.

    ``required`` says whether its absence makes ``lxcframe check`` fail: True (the default) when the
    plugin cannot do what it offers without it; False when lxcframe works on without it (a slower
    fallback, keys ignored as LXC ignores them on such a host, one option that needs it).
    """

    name: str
    supported: bool
    detail: str
    required: bool = True


def never_raises(name: str) -> Callable[[Callable[_Args, Probe]], Callable[_Args, Probe]]:
    """Turn any exception escaping a probe (whatever its arguments) into an unsupported Probe."""

    def decorate(func: Callable[_Args, Probe]) -> Callable[_Args, Probe]:
        @functools.wraps(func)
        def wrapper(*args: _Args.args, **kwargs: _Args.kwargs) -> Probe:
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # a probe must never take the check down
                return Probe(name, False, f"probe failed: {describe(exc)}")

        return wrapper

    return decorate


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()
