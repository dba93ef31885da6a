"""A typed per-run store, after pytest's ``Stash``: values are reached through keys, never strings.

A plugin makes its keys once, at module level, with the type of what they hold::

    SERVER = StashKey[ConsoleServer]()
    ctx.stash[SERVER] = server          # mypy checks that ``server`` is a ConsoleServer
    ctx.stash.get(SERVER, None)         # ConsoleServer | None

Two plugins cannot collide (a key is an object, not a name), and a missing key is a ``KeyError``
naming the key. :class:`DescriptorKey` is a key for a file descriptor that crosses a barrier from the
monitor to the child: it carries a name, unique in the process, under which it travels.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
D = TypeVar("D")


class StashKey(Generic[T]):
    """A key of a :class:`Stash`; ``T`` is the type of its value. ``what`` only names it in errors."""

    __slots__ = ("what",)

    def __init__(self, what: str = "") -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.what or hex(id(self))}>"


class Stash:
    """Values of one run (one start, one child) keyed by :class:`StashKey`; never saved, never sent."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[StashKey[Any], object] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._items[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        try:
            return cast(T, self._items[key])
        except KeyError:
            raise KeyError(f"nothing stashed under {key!r}") from None

    def get(self, key: StashKey[T], default: D) -> T | D:
        try:
            return self[key]
        except KeyError:
            return default

    def setdefault(self, key: StashKey[T], default: T) -> T:
        if key not in self._items:
            self._items[key] = default
        return self[key]

    def pop(self, key: StashKey[T], default: D) -> T | D:
        if key not in self._items:
            return default
        return cast(T, self._items.pop(key))

    def __delitem__(self, key: StashKey[T]) -> None:
        try:
            del self._items[key]
        except KeyError:
            raise KeyError(f"nothing stashed under {key!r}") from None

    def __contains__(self, key: StashKey[T]) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


#: Names of the descriptor keys made in this process: a descriptor travels under its key's name.
_DESCRIPTOR_NAMES: set[str] = set()


class DescriptorKey(StashKey[int]):
    """A key for a descriptor the monitor hands the child at a barrier (see :mod:`lxcframe.handover`).

    The name is how the descriptor is labelled on the wire; two keys of one name would receive each
    other's descriptors, so a second key of a name is refused.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not name:
            raise ValueError("a descriptor key needs a name")
        if name in _DESCRIPTOR_NAMES:
            raise ValueError(f"a descriptor key named {name!r} exists already")
        _DESCRIPTOR_NAMES.add(name)
        super().__init__(name)
        self.name = name
