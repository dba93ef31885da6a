"""A host fact for ``lxcframe check``, and the guard every probe runs under.

Each plugin probes what it needs in its own ``lxcframe_check`` hook and returns :class:`Probe`
objects. A probe never raises: a check command must report everything it can, so any failure is
turned into ``supported=False`` with the reason in ``detail``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import attrs


@attrs.frozen
class Probe:
    """One host fact: what was checked, whether it is usable, and why."""

    name: str
    supported: bool
    detail: str


def never_raises(name: str) -> Callable[[Callable[[], Probe]], Callable[[], Probe]]:
    """Turn any exception escaping a probe into an unsupported Probe."""

    def decorate(func: Callable[[], Probe]) -> Callable[[], Probe]:
        @functools.wraps(func)
        def wrapper() -> Probe:
            try:
                return func()
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
