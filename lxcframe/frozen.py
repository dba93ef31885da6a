"""A read-only view of a mapping, for attrs frozen classes whose fields are dicts."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


def frozen_mapping(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy: later changes to ``mapping`` do not show through, and it cannot be changed."""
    return MappingProxyType(dict(mapping))
