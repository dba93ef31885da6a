"""Frozen attrs objects as JSON, field by field, under a version tag: how a start plan crosses from
its caller to the supervisor or to a helper monitor, so that the receiving side uses the plan as it
was built instead of building it again.

Every attrs instance is written with its class (``module:QualName``) and its init fields by name; a
tuple, a frozenset and a mapping are tagged so that they come back as what they were (a mapping may
have keys that are not strings); bytes (a compiled seccomp program) are one base64 string. A class
added to the plan later (a plugin's typed part) crosses with no change here.

The receiving side trusts nothing about the bytes: a class must already be imported there (input
never imports a module) and belong to lxcframe or to a package the receiver names (its plugins'),
its fields must be exactly the class's (none missing, none unknown) and each value must have the
type the class declares. Any other input is a :class:`TransferError` naming where it was found.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc
import functools
import json
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import attrs

FORMAT = "lxcframe-transfer"
VERSION = 1

_ATTRS, _FIELDS, _TUPLE, _FROZENSET, _MAP = "$attrs", "fields", "$tuple", "$frozenset", "$map"
_BYTES = "$bytes"

T = TypeVar("T")


class TransferError(ValueError):
    """Transferred data that is not what this installation writes; the message says where."""


# --- writing -------------------------------------------------------------------------------------


def dumps(obj: Any) -> bytes:
    """``obj`` (an attrs instance) with the format and version tag, as UTF-8 JSON."""
    return json.dumps(wrap(obj), separators=(",", ":")).encode()


def wrap(obj: Any) -> dict[str, Any]:
    """``obj`` as a JSON-able document with the format and version tag (to embed in a message)."""
    return {"format": FORMAT, "version": VERSION, "data": encode(obj, "")}


def encode(value: Any, where: str = "") -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if attrs.has(type(value)):
        cls = type(value)
        fields = {f.name: encode(getattr(value, f.name), f"{where}.{f.name}")
                  for f in attrs.fields(cls) if f.init}
        return {_ATTRS: class_name(cls), _FIELDS: fields}
    if isinstance(value, bytes):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, tuple):
        return {_TUPLE: [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, frozenset):
        return {_FROZENSET: [encode(item, f"{where}[]") for item in sorted(value, key=repr)]}
    if isinstance(value, Mapping):
        return {_MAP: [[encode(k, f"{where} key"), encode(v, f"{where}[{k!r}]")] for k, v in value.items()]}
    raise TransferError(f"{where or 'value'}: a {type(value).__name__} cannot be transferred")


def encoded_field(encoded: Any, name: str, what: str) -> Any:
    """Field ``name`` of an encoded attrs object, still encoded: what a reader decodes first (the plugin
    selection, before the values of those plugins' classes); a :class:`TransferError` naming ``what``
    the document should have been when there is none."""
    fields = encoded.get("fields") if isinstance(encoded, dict) else None
    if not isinstance(fields, dict) or not isinstance(fields.get(name), dict):
        raise TransferError(f"not {what}")
    return fields[name]


def class_name(cls: type) -> str:
    """How transferred data names a class: ``module:QualName``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def encode_by_class(values: Mapping[type, Any]) -> dict[str, Any]:
    """``values`` (one instance per class) as JSON-able: class name -> the instance encoded."""
    return {class_name(cls): encode(value, class_name(cls)) for cls, value in values.items()}


# --- reading -------------------------------------------------------------------------------------


def parse(data: bytes) -> Any:
    """The encoded object inside ``data``, once the format and version tag are checked."""
    return unwrap(parse_json(data))


def parse_json(data: bytes) -> Any:
    """``data`` as JSON, or a :class:`TransferError`."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as err:
        raise TransferError(f"not JSON: {err}") from None


def unwrap(document: Any) -> Any:
    """The encoded object inside a parsed document, once the format and version tag are checked."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise TransferError(f"not an {FORMAT} document")
    if document.get("version") != VERSION:
        raise TransferError(f"{FORMAT} version {document.get('version')!r}: this installation reads version {VERSION}")
    if set(document) != {"format", "version", "data"}:
        raise TransferError(f"unknown parts {sorted(set(document) - {'format', 'version', 'data'})}")
    return document["data"]


def decode(encoded: Any, cls: type[T], packages: Iterable[str] = ()) -> T:
    """The ``cls`` instance ``encoded`` holds; ``packages`` are top-level packages (besides lxcframe)
    whose classes may appear in it."""
    trusted = ("lxcframe", *packages)
    try:
        value = _decode(encoded, "", trusted)
    except RecursionError:
        raise TransferError("nested too deeply") from None
    if type(value) is not cls:
        raise TransferError(f"expected a {cls.__qualname__}, got a {type(value).__qualname__}")
    return typing.cast(T, value)


def decode_by_class(encoded: Mapping[str, Any], cls: type[T]) -> T | None:
    """The ``cls`` instance among ``encoded`` (as :func:`encode_by_class` wrote them), or ``None``.

    Only ``cls``'s own package is trusted: the reader names the class it expects, so nothing else
    of the sender's needs to be loaded here.
    """
    raw = encoded.get(class_name(cls))
    if raw is None:
        return None
    return decode(raw, cls, (cls.__module__.split(".")[0],))


def _decode(encoded: Any, where: str, trusted: tuple[str, ...]) -> Any:
    if encoded is None or isinstance(encoded, (bool, int, float, str)):
        return encoded
    if isinstance(encoded, list):
        return [_decode(item, f"{where}[{i}]", trusted) for i, item in enumerate(encoded)]
    if not isinstance(encoded, dict) or len(encoded) not in (1, 2):
        raise TransferError(f"{where or 'top'}: not an encoded value: {_short(encoded)}")
    if _ATTRS in encoded:
        return _decode_attrs(encoded, where, trusted)
    if len(encoded) != 1:
        raise TransferError(f"{where or 'top'}: not an encoded value: {_short(encoded)}")
    (tag, items), = encoded.items()
    if tag == _BYTES:
        return _decode_bytes(items, where)
    if not isinstance(items, list):
        raise TransferError(f"{where or 'top'}: {tag} holds {_short(items)}, not a list")
    if tag == _TUPLE:
        return tuple(_decode(item, f"{where}[{i}]", trusted) for i, item in enumerate(items))
    if tag == _FROZENSET:
        return frozenset(_decode(item, f"{where}[]", trusted) for item in items)
    if tag == _MAP:
        result: dict[Any, Any] = {}
        for pair in items:
            if not isinstance(pair, list) or len(pair) != 2:
                raise TransferError(f"{where or 'top'}: a mapping entry is not a [key, value] pair: {_short(pair)}")
            key = _decode(pair[0], f"{where} key", trusted)
            try:
                result[key] = _decode(pair[1], f"{where}[{key!r}]", trusted)
            except TypeError:
                raise TransferError(f"{where or 'top'}: unhashable key {_short(pair[0])}") from None
        return result
    raise TransferError(f"{where or 'top'}: unknown tag {tag!r}")


def _decode_bytes(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise TransferError(f"{where or 'top'}: {_BYTES} holds {_short(text)}, not a string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TransferError(f"{where or 'top'}: {_BYTES} holds {_short(text)}, not base64") from None


def _decode_attrs(encoded: dict[str, Any], where: str, trusted: tuple[str, ...]) -> Any:
    name, fields = encoded.get(_ATTRS), encoded.get(_FIELDS)
    if not isinstance(name, str) or not isinstance(fields, dict) or set(encoded) != {_ATTRS, _FIELDS}:
        raise TransferError(f"{where or 'top'}: malformed object {_short(encoded)}")
    cls = _class(name, where, trusted)
    wanted = {f.name: f for f in attrs.fields(cls) if f.init}
    unknown = sorted(set(fields) - set(wanted))
    missing = sorted(n for n, f in wanted.items() if n not in fields and f.default is attrs.NOTHING)
    if unknown:
        raise TransferError(f"{where or 'top'}: {cls.__qualname__} has no field {', '.join(unknown)}")
    if missing:
        raise TransferError(f"{where or 'top'}: {cls.__qualname__} misses field {', '.join(missing)}")
    hints = _hints(cls)
    values = {}
    for field_name, raw in fields.items():
        value = _decode(raw, f"{where}.{field_name}", trusted)
        hint = hints.get(field_name, Any)
        if not _conforms(value, hint):
            raise TransferError(f"{where}.{field_name}: {_short(value)} is not a {_hint_name(hint)}")
        values[wanted[field_name].alias] = value
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise TransferError(f"{where or 'top'}: {cls.__qualname__}: {err}") from None


def _class(name: str, where: str, trusted: tuple[str, ...]) -> type:
    module_name, _, qualname = name.partition(":")
    if module_name.split(".")[0] not in trusted:
        raise TransferError(f"{where or 'top'}: class {name!r} is not lxcframe's or an enabled plugin's")
    module = sys.modules.get(module_name)  # never imported because some input names it
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if module is None or not isinstance(obj, type) or not attrs.has(obj):
        raise TransferError(f"{where or 'top'}: no attrs class {name!r} is loaded here")
    return obj


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a name only imported for type checkers: that class's fields go unchecked
        return {}


def _conforms(value: Any, hint: Any) -> bool:
    if hint is Any or isinstance(hint, TypeVar):
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(item, args[0]) for item in value)
        return not args or (len(args) == len(value) and all(map(_conforms, value, args)))
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            return False
        key_hint, value_hint = args or (Any, Any)
        return all(_conforms(k, key_hint) and _conforms(v, value_hint) for k, v in value.items())
    if origin in (list, frozenset):
        item_hint = args[0] if args else Any
        return isinstance(value, origin) and all(_conforms(item, item_hint) for item in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a kind of annotation not checked here (a callable, a protocol…)


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
