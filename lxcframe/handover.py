"""What crosses from the monitor to the child at a barrier, typed: frozen attrs messages keyed by their
class, and descriptors keyed by :class:`~lxcframe.stash.DescriptorKey`.

A host hook hands the child something with ``ctx.handover.send(NetInside(...))`` or
``ctx.handover.send_fd(CONSOLE_LINK, fd)``; at the next barrier the monitor sends the messages
(serialised by :mod:`lxcframe.transfer`, under their class's ``module:QualName``) and the descriptors
(SCM_RIGHTS, labelled with their key's name), then closes its copies. The child reads
``ctx.received.message(NetInside)`` and ``ctx.received.take_fd(CONSOLE_LINK)``; nothing is reached
through a string key. A message is decoded when asked for, against the class the reader names: the
child was forked before the monitor imported what its later stages send (e.g. the network's).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import attrs

from lxcframe import transfer
from lxcframe.stash import DescriptorKey

T = TypeVar("T")


def is_frozen_attrs(value: Any) -> bool:
    cls = type(value)
    return attrs.has(cls) and getattr(cls.__setattr__, "__name__", "") == "_frozen_setattrs"


def by_class(items: Iterable[Any], what: str) -> dict[type, Any]:
    """``items`` keyed by their class; each must be a frozen attrs instance, one per class."""
    found: dict[type, Any] = {}
    for item in items:
        if not is_frozen_attrs(item):
            raise TypeError(f"{what}: {item!r} is not an instance of a frozen attrs class")
        cls = type(item)
        if cls in found:
            raise TypeError(f"{what}: two {cls.__qualname__} given")
        found[cls] = item
    return found


class Handover:
    """The monitor's side: what the child gets at the next barrier."""

    def __init__(self) -> None:
        self._messages: dict[type, Any] = {}
        self._fds: dict[DescriptorKey, int] = {}

    def send(self, message: Any) -> None:
        """Hand ``message`` (a frozen attrs instance) over at the next barrier; replaces one of its class."""
        if not is_frozen_attrs(message):
            raise TypeError(f"a handover message must be a frozen attrs instance, not {message!r}")
        self._messages[type(message)] = message

    def send_fd(self, key: DescriptorKey, fd: int) -> None:
        """Hand ``fd`` over at the next barrier; the monitor closes its copy once sent."""
        if key in self._fds:
            raise ValueError(f"descriptor {key.name!r} is already waiting for the child")
        self._fds[key] = fd

    def messages(self) -> tuple[Any, ...]:
        """The messages waiting, as they are (an attach sends them inside its request)."""
        return tuple(self._messages.values())

    def take_back_fd(self, key: DescriptorKey) -> int | None:
        """The descriptor waiting under ``key`` (now the caller's to close), or ``None`` once sent."""
        return self._fds.pop(key, None)

    def drain(self) -> tuple[dict[str, Any], dict[str, int]]:
        """What to send now: the encoded messages by class name and the descriptors by key name; both
        start empty again."""
        messages, self._messages = self._messages, {}
        fds, self._fds = self._fds, {}
        return transfer.encode_by_class(messages), {key.name: fd for key, fd in fds.items()}


class Received:
    """The child's side: every message and descriptor the monitor handed over so far."""

    def __init__(self) -> None:
        self._encoded: dict[str, Any] = {}
        self._fds: dict[str, int] = {}

    def add(self, encoded: Any, fds: dict[str, int]) -> None:
        """Take in one barrier's hand-over (as :meth:`Handover.drain` made it)."""
        self._fds.update(fds)
        if not isinstance(encoded, dict) or not all(isinstance(name, str) for name in encoded):
            raise transfer.TransferError(f"handover: not messages by class name: {encoded!r:.80}")
        self._encoded.update(encoded)

    def message(self, cls: type[T]) -> T | None:
        """The message of class ``cls`` handed over so far, or ``None``."""
        return transfer.decode_by_class(self._encoded, cls)

    def take_fd(self, key: DescriptorKey) -> int | None:
        """The descriptor sent under ``key`` (now the caller's to close), or ``None`` if none was."""
        return self._fds.pop(key.name, None)
