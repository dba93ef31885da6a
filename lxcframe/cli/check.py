"""``lxcframe check``: the host's facts as a table that fits the terminal, or as JSON.

A detail longer than its column is cut with ``…`` to keep one line per fact; ``--verbose`` wraps it
onto following lines instead, and ``--format json`` has it whole. A missing fact that lxcframe works
on without says ``no (optional)``.
"""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

from lxcframe.cli import table

if TYPE_CHECKING:
    from lxcframe.host_check import CheckRow

HEADERS = ("PLUGIN", "FEATURE", "SUPPORTED", "DETAIL")
#: Narrower than this, the detail column would be too thin to read: details go below their row.
MIN_DETAIL = 24
#: Indents, when details go below their row: a row's own continuation, and its detail.
HEAD_INDENT = "  "
BLOCK_INDENT = "    "


def supported_cell(row: CheckRow) -> str:
    return "yes" if row.supported else "no" if row.required else "no (optional)"


def render_text(rows: list[CheckRow], width: int, verbose: bool = True) -> str:
    """A table no line of which is longer than ``width``: long details wrap onto following lines,
    indented to the detail column (or below the row, indented, when the other columns take the room);
    not ``verbose``, each detail is cut to its first line instead."""
    cells = [(row.plugin, row.name, supported_cell(row)) for row in rows]
    widths = [max([len(header), *(len(cell[i]) for cell in cells)]) for i, header in enumerate(HEADERS[:3])]
    indent = sum(widths) + 2 * len(widths)
    if width - indent >= MIN_DETAIL:
        lines = [_join(HEADERS[:3], widths) + "  " + HEADERS[3]]
        for cell, row in zip(cells, rows, strict=True):
            detail = _wrap(row.detail, width - indent) if verbose else [_cut(row.detail, width - indent)]
            lines.append((_join(cell, widths) + "  " + detail[0]).rstrip())
            lines.extend((" " * indent + line).rstrip() for line in detail[1:])
        return "\n".join(lines)
    # Too narrow for columns: each row on a line of its own (wrapped, never cut), its detail below.
    lines = _wrap("  ".join(HEADERS[:3]), width)
    for cell, row in zip(cells, rows, strict=True):
        lines.extend(_wrap("  ".join(cell), width, HEAD_INDENT))
        room = width - len(BLOCK_INDENT)
        detail = _wrap(row.detail, room) if verbose else [_cut(row.detail, room)]
        lines.extend(BLOCK_INDENT + line for line in detail if line)
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _join(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True))


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    # Paths and option lists have no spaces to break at: break inside words rather than overflow.
    return textwrap.wrap(text, width=max(width, len(indent) + 1), subsequent_indent=indent,
                         break_long_words=True, break_on_hyphens=False) or [""]


def terminal_width() -> int:
    return max(table.terminal_width(), MIN_DETAIL + len(BLOCK_INDENT))


def run(options: Any, plugins: Any) -> int:
    from lxcframe.host_check import check_host, passes

    rows = check_host(plugins)
    if options.format == "json":
        print(json.dumps([row.as_json() for row in rows], indent=2))
    else:
        print(render_text(rows, terminal_width(), verbose=options.verbose))
    return 0 if passes(rows) else 1
