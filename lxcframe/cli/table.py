"""Plain-text tables of the CLI's listings: columns padded to their widest cell, fitted to the terminal.

A table wider than the terminal gives room from its widest columns first: their cells are cut with
``…`` (the default), or wrapped onto lines of their own within the column (``--verbose``), so no line
is longer than the terminal and, verbose, nothing is lost. ``--format json`` always has every cell whole.
"""

from __future__ import annotations

import shutil
import textwrap
from typing import Any

#: Width when stdout is no terminal and COLUMNS says nothing: what a pipe or a log usually shows.
DEFAULT_WIDTH = 80
#: No column is made narrower than this (or than its header): a cut below it says nothing.
MIN_COLUMN = 6
GAP = "  "
CUT = "…"


def terminal_width() -> int:
    """COLUMNS when set, else the terminal's width when stdout is one, else :data:`DEFAULT_WIDTH`."""
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Every cell whole, columns as wide as their widest cell."""
    return _render(headers, rows, _natural(headers, rows), wrap=False)


def fit(headers: list[str], rows: list[list[str]], options: Any = None, width: int | None = None,
        keep: tuple[int, ...] = (0,)) -> str:
    """The table at most ``width`` (the terminal's) wide: cut cells, or wrapped ones with ``options.verbose``.
    The columns ``keep`` (the first: a name) are never narrowed."""
    width = terminal_width() if width is None else width
    widths = fitted_widths(headers, rows, width, keep)
    return _render(headers, rows, widths, wrap=bool(getattr(options, "verbose", False)))


def fitted_widths(headers: list[str], rows: list[list[str]], width: int, keep: tuple[int, ...] = (0,)) -> list[int]:
    """Column widths whose sum (with the gaps) is at most ``width`` where the floors allow: the widest
    column not in ``keep`` gives up a character at a time."""
    widths = _natural(headers, rows)
    floors = [w if i in keep else min(w, max(len(h), MIN_COLUMN))
              for i, (h, w) in enumerate(zip(headers, widths, strict=True))]
    room = width - len(GAP) * (len(headers) - 1)
    while sum(widths) > room:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            break  # narrower than the floors: the lines overflow rather than say nothing
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _natural(headers: list[str], rows: list[list[str]]) -> list[int]:
    return [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]


def _render(headers: list[str], rows: list[list[str]], widths: list[int], *, wrap: bool) -> str:
    lines = [_line(headers, widths)]
    for row in rows:
        if not wrap:
            lines.append(_line([_cut(cell, w) for cell, w in zip(row, widths, strict=True)], widths))
            continue
        cells = [_wrapped(cell, w) for cell, w in zip(row, widths, strict=True)]
        for n in range(max(len(c) for c in cells)):
            lines.append(_line([c[n] if n < len(c) else "" for c in cells], widths))
    return "\n".join(lines)


def _line(cells: list[str], widths: list[int]) -> str:
    return GAP.join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _cut(cell: str, width: int) -> str:
    return cell if len(cell) <= width else cell[: max(width - len(CUT), 0)] + CUT


def _wrapped(cell: str, width: int) -> list[str]:
    # Lists joined by ", " break after their commas; paths and names with no space break inside.
    return textwrap.wrap(cell, width=max(width, 1), break_long_words=True, break_on_hyphens=False) or [""]
