"""Typed state records: what plugins keep in ``state.json`` for stop, attach, info and cleanup.

Each plugin records one frozen attrs instance of its own class (``ctx.state_records.put(CgroupRecord(...))``);
the state file holds them serialised by :mod:`lxcframe.transfer`, under the class's ``module:QualName``.
A reader asks for the class it knows (``state.record(CgroupRecord)``): the record is decoded then,
checked field by field against that class, so reading the state needs no plugin loaded in advance.
"""

from __future__ import annotations

from typing import Any, TypeVar

from lxcframe import transfer
from lxcframe.handover import is_frozen_attrs

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
        """JSON-able: class name -> the record encoded (read back by :func:`transfer.decode_by_class`)."""
        return transfer.encode_by_class(self._by_class)
