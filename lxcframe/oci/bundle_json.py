"""Reading a bundle's ``config.json`` with the line of every field, so errors name file, line and field.

:mod:`json` gives values only; a translated key must still point at where it was written (as a line of
an LXC config does), so containers are walked here and scalars left to :meth:`json.JSONDecoder.raw_decode`.
"""

from __future__ import annotations

import bisect
import json
from typing import Any

import attrs

from lxcframe.errors import ConfigError
from lxcframe.input_limits import InputRefused, read_bounded

_WS = " \t\n\r"
_DECODER = json.JSONDecoder()
#: Deeper than any spec'd config.json nests; bounds the recursion on hostile input.
MAX_DEPTH = 64


@attrs.frozen
class JsonDoc:
    """A parsed document and the line each field path (``process.env[2]``) starts on."""

    path: str
    data: Any
    lines: dict[str, int]

    def line(self, field: str) -> int:
        """The line ``field`` starts on; the nearest enclosing field's line when it is not there."""
        while field:
            if field in self.lines:
                return self.lines[field]
            cut = max(field.rfind("."), field.rfind("["))
            field = field[:cut] if cut > 0 else ""
        return 1


def read_json(path: str, shown: str) -> JsonDoc:
    """Read and parse the file at ``path``; errors name it as ``shown``."""
    try:
        text = read_bounded(path).decode()
    except FileNotFoundError:
        raise ConfigError("no such file or directory", path=shown) from None
    except PermissionError:
        raise ConfigError("permission denied", path=shown) from None
    except InputRefused as err:
        raise ConfigError(str(err), path=shown) from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"not UTF-8 text ({err.reason} at byte {err.start})", path=shown) from None
    except OSError as err:
        raise ConfigError(err.strerror or str(err), path=shown) from None
    return parse_json(text, shown)


def parse_json(text: str, shown: str) -> JsonDoc:
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    reader = _Reader(text, starts, shown)
    value, end = reader.value(0, "", 0)
    end = reader.skip(end)
    if end != len(text):
        raise reader.error(end, "extra data after the JSON document")
    return JsonDoc(shown, value, reader.lines)


class _Reader:
    def __init__(self, text: str, starts: list[int], shown: str) -> None:
        self.text = text
        self.starts = starts
        self.shown = shown
        self.lines: dict[str, int] = {}

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def error(self, offset: int, why: str) -> ConfigError:
        return ConfigError(f"not valid JSON: {why}", path=self.shown, line=self.line_of(offset))

    def skip(self, i: int) -> int:
        text = self.text
        while i < len(text) and text[i] in _WS:
            i += 1
        return i

    def value(self, i: int, field: str, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise self.error(i, f"nested deeper than {MAX_DEPTH} levels")
        i = self.skip(i)
        if field:
            self.lines[field] = self.line_of(i)
        ch = self.text[i:i + 1]
        if ch == "{":
            return self.object(i + 1, field, depth)
        if ch == "[":
            return self.array(i + 1, field, depth)
        try:
            return _DECODER.raw_decode(self.text, i)
        except json.JSONDecodeError as err:
            raise self.error(err.pos, err.msg) from None

    def object(self, i: int, field: str, depth: int) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        i = self.skip(i)
        if self.text[i:i + 1] == "}":
            return result, i + 1
        while True:
            if self.text[i:i + 1] != '"':
                raise self.error(i, "expected a property name in double quotes")
            try:
                name, i = _DECODER.raw_decode(self.text, i)
            except json.JSONDecodeError as err:
                raise self.error(err.pos, err.msg) from None
            i = self.skip(i)
            if self.text[i:i + 1] != ":":
                raise self.error(i, "expected ':'")
            result[name], i = self.value(i + 1, f"{field}.{name}" if field else name, depth + 1)
            i = self.skip(i)
            ch = self.text[i:i + 1]
            if ch == "}":
                return result, i + 1
            if ch != ",":
                raise self.error(i, "expected ',' or '}'")
            i = self.skip(i + 1)

    def array(self, i: int, field: str, depth: int) -> tuple[list[Any], int]:
        result: list[Any] = []
        i = self.skip(i)
        if self.text[i:i + 1] == "]":
            return result, i + 1
        while True:
            item, i = self.value(i, f"{field}[{len(result)}]", depth + 1)
            result.append(item)
            i = self.skip(i)
            ch = self.text[i:i + 1]
            if ch == "]":
                return result, i + 1
            if ch != ",":
                raise self.error(i, "expected ',' or ']'")
            i += 1
