"""The table of ``bench/run.py``: one row per goal, the host's facts, printed and written as markdown."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections.abc import Sequence

import attrs


@attrs.frozen
class Row:
    """One line of the table, as text: what was measured on each side and whether the goal was met."""

    key: str
    measure: str
    ours: str
    theirs: str
    ratio: str
    goal: str
    verdict: str


def spread(values: Sequence[float], unit: str = "ms") -> str:
    """``median (min–max)`` of ``values``, or ``n/a`` when nothing was measured."""
    if not values:
        return "n/a"
    return f"{statistics.median(values):.1f} {unit} ({min(values):.1f}–{max(values):.1f})"


def verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "n/a"
    return "MET" if value <= goal else "MISSED"


def ratio_row(key: str, measure: str, ours: Sequence[float], theirs: Sequence[float], goal: float,
              theirs_text: str | None = None) -> Row:
    """A row held to ``median(ours) / median(theirs) <= goal``."""
    value = statistics.median(ours) / statistics.median(theirs) if ours and theirs else None
    return Row(key, measure, spread(ours), theirs_text or spread(theirs),
               "n/a" if value is None else f"{value:.2f}", f"ratio ≤ {goal:g}", verdict(value, goal))


@attrs.frozen
class HostFacts:
    kernel: str
    cores: str
    cpu: str
    python: str
    lxcframe: str
    lxc: str
    thin_clients: str
    settings: str

    def lines(self) -> list[tuple[str, str]]:
        return [("kernel", self.kernel), ("cores", self.cores), ("CPU", self.cpu), ("interpreter", self.python),
                ("lxcframe", self.lxcframe), ("LXC", self.lxc),
                ("lxcframe's commands as thin clients of its server", self.thin_clients),
                ("settings", self.settings)]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cores() -> str:
    usable = len(os.sched_getaffinity(0))
    return f"{os.cpu_count()} online, {usable} usable by this process"


def markdown(rows: list[Row], first: list[Row], facts: HostFacts, command: str, notes: list[str]) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# lxcframe next to LXC", "", f"`{command}` on {when}.", "", "| host | |", "|---|---|"]
    out += [f"| {name} | {value} |" for name, value in facts.lines()]
    out += ["", "| # | measure | lxcframe median (min–max) | LXC median (min–max) | ratio | goal | |",
            "|---|---|---|---|---|---|---|"]
    out += [f"| {r.key} | {r.measure} | {r.ours} | {r.theirs} | {r.ratio} | {r.goal} | {r.verdict} |" for r in rows]
    if first:
        out += ["", "The first command on a host where no lxcframe server runs yet (a fresh run directory each "
                "time), next to the same command once the server is warm:", "",
                "| measure | first command | warm | difference |", "|---|---|---|---|"]
        out += [f"| {r.measure} | {r.ours} | {r.theirs} | {r.ratio} |" for r in first]
    if notes:
        out += ["", *[f"- {note}" for note in notes]]
    return "\n".join(out) + "\n"


def print_table(rows: list[Row], first: list[Row], facts: HostFacts, notes: list[str]) -> None:
    print()
    for name, value in facts.lines():
        print(f"{name}: {value}")
    headers = ("#", "measure", "lxcframe median (min–max)", "LXC median (min–max)", "ratio", "goal", "")
    table = [headers, *(attrs.astuple(r) for r in rows)]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(headers))]
    print()
    for line in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    if first:
        print("\nfirst command with no server running yet (fresh run directory):")
        for r in first:
            print(f"  {r.measure}: {r.ours}; warm: {r.theirs}; difference {r.ratio}")
    for note in notes:
        print(f"- {note}")
