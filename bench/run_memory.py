"""Row P4 of ``bench/run.py``: the host memory (PSS) of ALL of each runtime's host processes with N and with
2N containers running, and what each extra container adds."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

from common import cmdline, host_side, memory_kb
from run_bench import RunBench
from run_report import Row, verdict

GOAL_SLOPE_KB = 128.0
#: PSS moves while monitors finish their start; it counts once two readings agree this closely.
SETTLED = 0.01
SETTLE_LIMIT_S = 10.0


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return handle.read().split(b"\0")
    except OSError:
        return []


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _in_host_pid_namespace(pid: int, own: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == own
    except OSError:
        return False


def lxcframe_processes(run_dir: str, below: bool = False) -> list[int]:
    """Every host process of lxcframe's using ``run_dir`` (with ``below``, any run directory below it): the
    server (supervisor), the monitors it forks and anything they run, all of which keep their run directory
    in their environment. The containers' own processes are in other pid namespaces and do not count."""
    marker = f"LXCFRAME_RUNDIR={run_dir}".encode()

    def ours(entry: bytes) -> bool:
        return entry.startswith(marker + os.sep.encode()) if below else entry == marker

    own = os.readlink("/proc/self/ns/pid")
    return sorted(pid for pid in _pids() if pid != os.getpid()
                  and any(ours(entry) for entry in _environ(pid)) and _in_host_pid_namespace(pid, own))


def lxc_processes(lxc_path: str) -> list[int]:
    """Every host process of LXC's for this run: each ``[lxc monitor] LXCPATH NAME`` and its host-side
    descendants (LXC has no daemon besides)."""
    found: set[int] = set()
    for pid in _pids():
        words = cmdline(pid).split()
        if words[:2] == ["[lxc", "monitor]"] and len(words) > 2 and words[2].rstrip("/") == lxc_path.rstrip("/"):
            found.update(host_side(pid))
    return sorted(found)


def settled_total(find: Callable[[], list[int]]) -> tuple[int, dict[int, int]]:
    """Total PSS (kB) of the processes ``find`` gives and each one's, once two readings in a row agree."""
    deadline = time.monotonic() + SETTLE_LIMIT_S
    previous = -1
    while True:
        each = {pid: memory_kb(pid)["pss"] for pid in find()}
        total = sum(each.values())
        if (previous >= 0 and abs(total - previous) <= SETTLED * max(previous, 1)) or time.monotonic() > deadline:
            return total, each
        previous = total
        time.sleep(0.2)


def _check_monitors(bench: RunBench, names: list[str], counted: dict[int, int]) -> None:
    """Each running container's monitor (``lxcframe info``) must be among the processes counted."""
    for name in names:
        result = bench.lf("info", name, "--format", "json")
        if result.returncode != 0:
            bench.failures.add("P4: lxcframe info", result)
            continue
        monitor = json.loads(result.stdout).get("monitor_pid")
        if monitor not in counted:
            bench.failures.add("P4: finding lxcframe's processes", result,
                               f"the monitor of {name} ({monitor}) has no LXCFRAME_RUNDIR of this run")


def p4_memory(bench: RunBench, count: int) -> tuple[list[Row], list[str]]:
    print(f"P4 host memory of every host process with {count} and {2 * count} running of each", flush=True)
    running: list[str] = []
    made = 0
    figures: dict[int, tuple[tuple[int, dict[int, int]], tuple[int, dict[int, int]]]] = {}
    try:
        for level in (count, 2 * count):
            for index in range(made, level):
                pair = [bench.make_lxcframe(f"m{index:02d}"), bench.make_lxc(f"m{index:02d}")]
                running += bench.start_all([n for n in pair if n is not None], "P4")
            made = level
            ours = settled_total(lambda: lxcframe_processes(bench.env["LXCFRAME_RUNDIR"]))
            theirs = settled_total(lambda: lxc_processes(bench.lxc_path))
            _check_monitors(bench, [n for n in running if n.startswith("lf")], ours[1])
            figures[level] = (ours, theirs)
    finally:
        bench.stop_all(running, "P4")
    return _rows(figures, count), _notes(figures)


def _rows(figures: dict[int, tuple[tuple[int, dict[int, int]], tuple[int, dict[int, int]]]], count: int) -> list[Row]:
    rows = []
    for level, ((ours, our_each), (theirs, their_each)) in sorted(figures.items()):
        value = ours / theirs if theirs else None
        rows.append(Row("P4", f"host PSS of all host processes, {level} running", f"{ours} kB ({len(our_each)} proc.)",
                        f"{theirs} kB ({len(their_each)} proc.)", "n/a" if value is None else f"{value:.2f}",
                        "≤ LXC's total", verdict(value, 1.0)))
    if len(figures) == 2:
        (low_ours, low_theirs), (high_ours, high_theirs) = (figures[level] for level in sorted(figures))
        ours_slope = (high_ours[0] - low_ours[0]) / count
        theirs_slope = (high_theirs[0] - low_theirs[0]) / count
        rows.append(Row("P4", f"host PSS per extra container (from {count} to {2 * count} running)",
                        f"{ours_slope:.0f} kB", f"{theirs_slope:.0f} kB", "n/a", f"≤ {GOAL_SLOPE_KB:g} kB",
                        verdict(ours_slope, GOAL_SLOPE_KB)))
    return rows


def _notes(figures: dict[int, tuple[tuple[int, dict[int, int]], tuple[int, dict[int, int]]]]) -> list[str]:
    notes = []
    for level, ((_, our_each), (_, their_each)) in sorted(figures.items()):
        if our_each:
            biggest = max(our_each, key=our_each.__getitem__)
            rest = [kb for pid, kb in our_each.items() if pid != biggest]
            notes.append(f"P4 at {level}: lxcframe's largest process is `{cmdline(biggest)[:60]}` with "
                         f"{our_each[biggest]} kB PSS; the other {len(rest)} average "
                         f"{sum(rest) / len(rest) if rest else 0:.0f} kB; LXC's {len(their_each)} processes average "
                         f"{sum(their_each.values()) / len(their_each) if their_each else 0:.0f} kB")
    return notes
