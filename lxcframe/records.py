"""Typed state records: what plugins keep in ``state.json`` for stop, attach, info and cleanup.

Each plugin records one frozen attrs instance of its own class (``ctx.state_records.put(CgroupRecord(...))``);
the state file holds them serialised by :mod:`lxcframe.transfer`, under the class's ``module:QualName``.
A reader asks for the class it knows (``state.record(CgroupRecord)``): the record is decoded then,
checked field by field against that class, so reading the state needs no plugin loaded in advance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from lxcframe import transfer
from lxcframe.handover import class_name, is_frozen_attrs

T = TypeVar("T")


class Records:
    """The records of one start, in the monitor; replaced whole, one per class, as a start goes on."""

    def __init__(self) -> None:
        self._by_class: dict[type, Any] = {}

    def put(self, record: Any) -> None:
        if not is_frozen_attrs(record):
            raise TypeError(f"a state record must be a frozen attrs instance, not {record!r}")
        self._by_class[type(record)] = record

    def get(self, cls: type[T]) -> T | None:
        value: T | None = self._by_class.get(cls)
        return value

    def encoded(self) -> dict[str, Any]:
        """JSON-able: class name -> the record as :func:`transfer.encode` writes it."""
        return {class_name(cls): transfer.encode(record, class_name(cls)) for cls, record in self._by_class.items()}


def decode_record(encoded: Mapping[str, Any], cls: type[T]) -> T | None:
    """The ``cls`` record among ``encoded`` (as :meth:`Records.encoded` wrote them), or ``None``.

    A record that is not what ``cls`` is now is a :class:`transfer.TransferError`.
    """
    raw = encoded.get(class_name(cls))
    if raw is None:
        return None
    return transfer.decode(raw, cls, (cls.__module__.split(".")[0],))
