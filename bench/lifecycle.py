#!/usr/bin/env python3
"""lxcframe next to LXC, in one run, on the same busybox rootfs and an equivalent config.

Measures, interleaving the two runtimes so that a noisy host slows both alike:

(a) ``lxcframe execute NAME -- /bin/true`` vs ``lxc-execute -n NAME -P LXCPATH -- /bin/true``;
(b) start until RUNNING (``lxcframe start`` vs ``lxc-start`` + ``lxc-wait -s RUNNING``) and
    ``stop -k`` until STOPPED (``lxcframe stop -k`` vs ``lxc-stop -k`` + ``lxc-wait -s STOPPED``);
(c) host memory per running container: PSS of the host processes each runtime keeps per container
    (lxcframe's monitor vs LXC's ``[lxc monitor]``), with ``--containers`` running of each.

Needs root, Debian's ``lxc`` and ``busybox-static``. Everything lives in a fresh temporary directory
that is removed at the end; every container of both kinds is stopped and destroyed, also on Ctrl-C.
The containers, their configs, the commands and the cleanup are common.py's, shared with run.py.

    python3 bench/lifecycle.py [--runs 20] [--containers 20] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from common import (
    Bench,
    Failures,
    container_cgroups,
    end_report,
    interrupts_as_keyboard_interrupt,
    leftovers,
    memory_kb,
    pivot_cgroups,
    preflight,
    remove_cgroups,
    remove_new_pivots,
    run,
    timed,
)

GOAL_EXECUTE_RATIO = 1.5
GOAL_START_STOP_RATIO = 1.5
GOAL_MEMORY_KB = 1024.0


# --- measuring -----------------------------------------------------------------------------------


class Samples:
    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def text(self, unit: str = "ms") -> str:
        if not self.values:
            return "n/a"
        return f"{self.median:7.1f} {unit} ({min(self.values):.1f}–{max(self.values):.1f})"


def bench_execute(bench: Bench, runs: int, warmup: int) -> tuple[Samples, Samples]:
    lf, lxc = Samples(), Samples()
    lf_name = bench.make_lxcframe("exec")
    lxc_name = bench.make_lxc("exec")
    print(f"(a) execute -- /bin/true: {runs} runs each, interleaved", flush=True)
    sides: list[tuple[str | None, Callable[[str], subprocess.CompletedProcess[str]], Samples, str]] = [
        (lf_name, bench.lf_execute, lf, "lxcframe execute"),
        (lxc_name, bench.lxc_execute, lxc, "lxc-execute"),
    ]
    for index in range(warmup + runs):
        for name, execute, target, what in sides if index % 2 == 0 else reversed(sides):
            if name is None:
                continue
            elapsed, result = timed([partial(execute, name)])
            if result.returncode != 0:
                bench.failures.add(what, result)
            elif index >= warmup:
                target.add(elapsed)
    return lf, lxc


def bench_start_stop(bench: Bench, runs: int, warmup: int) -> dict[str, Samples]:
    samples = {key: Samples() for key in ("lf_start", "lxc_start", "lf_stop", "lxc_stop")}
    sides = [("lf", bench.make_lxcframe("cycle"), bench.lf_start, bench.lf_stop, "lxcframe"),
             ("lxc", bench.make_lxc("cycle"), bench.lxc_start, bench.lxc_stop, "lxc")]
    print(f"(b) start until RUNNING, stop -k until STOPPED: {runs} cycles each, interleaved", flush=True)
    for index in range(warmup + runs):
        for key, name, start, stop, label in sides if index % 2 == 0 else reversed(sides):
            if name is None:
                continue
            elapsed, result = timed(start(name))
            if result.returncode != 0:
                bench.failures.add(f"{label} start", result)
                continue
            if index >= warmup:
                samples[f"{key}_start"].add(elapsed)
            elapsed, result = timed(stop(name))
            if result.returncode != 0:
                bench.failures.add(f"{label} stop -k", result)
            elif index >= warmup:
                samples[f"{key}_stop"].add(elapsed)
    return samples


def bench_memory(bench: Bench, count: int) -> dict[str, Any]:
    print(f"(c) memory: {count} running containers of each kind", flush=True)
    lf_running, lxc_running = [], []
    for index in range(count):
        lf_name = bench.make_lxcframe(f"m{index:02d}")
        if lf_name is not None:
            _, result = timed(bench.lf_start(lf_name))
            if result.returncode == 0:
                lf_running.append(lf_name)
            else:
                bench.failures.add("lxcframe start (memory)", result)
        lxc_name = bench.make_lxc(f"m{index:02d}")
        if lxc_name is not None:
            _, result = timed(bench.lxc_start(lxc_name))
            if result.returncode == 0:
                lxc_running.append(lxc_name)
            else:
                bench.failures.add("lxc-start (memory)", result)
    time.sleep(1.0)  # let init and rcS settle in every container
    measured: dict[str, Any] = {}
    for label, names, finder in (("lxcframe", lf_running, bench.lf_host_pids),
                                 ("lxc", lxc_running, bench.lxc_host_pids)):
        totals = {"pss": 0, "rss": 0, "uss": 0}
        processes = 0
        containers = 0
        for name in names:
            pids = finder(name)
            if not pids:
                continue
            containers += 1
            processes += len(pids)
            for pid in pids:
                for key, value in memory_kb(pid).items():
                    totals[key] += value
        measured[label] = {"containers": containers, "processes": processes, **totals}
    for name in lf_running:
        result = bench.lf("stop", "-k", name)
        if result.returncode != 0:
            bench.failures.add("lxcframe stop -k (memory)", result)
    for name in lxc_running:
        _, result = timed(bench.lxc_stop(name))
        if result.returncode != 0:
            bench.failures.add("lxc-stop -k (memory)", result)
    return measured


# --- report --------------------------------------------------------------------------------------


def verdict(value: float | None, goal: float) -> str:
    if value is None:
        return "n/a"
    return "PASS" if value <= goal else "MISS"


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs <= 0:
        return None
    return ours / theirs


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def report(execute: tuple[Samples, Samples], cycle: dict[str, Samples], memory: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, str, str, str]] = []
    for label, ours, theirs in (("execute -- /bin/true", execute[0], execute[1]),
                                ("start until RUNNING", cycle["lf_start"], cycle["lxc_start"]),
                                ("stop -k until STOPPED", cycle["lf_stop"], cycle["lxc_stop"])):
        goal = GOAL_EXECUTE_RATIO if label.startswith("execute") else GOAL_START_STOP_RATIO
        value = ratio(ours.median, theirs.median)
        rows.append((label, ours.text(), theirs.text(), fmt_ratio(value), f"ratio <= {goal}", verdict(value, goal)))
    per: dict[str, dict[str, float] | None] = {}
    for side in ("lxcframe", "lxc"):
        data = memory.get(side) or {}
        n = data.get("containers", 0)
        per[side] = {k: data[k] / n for k in ("pss", "rss", "uss", "processes")} if n else None
    ours_pss = per["lxcframe"]["pss"] if per["lxcframe"] else None
    theirs_pss = per["lxc"]["pss"] if per["lxc"] else None
    rows.append(("host PSS per container", "n/a" if ours_pss is None else f"{ours_pss:9.0f} kB",
                 "n/a" if theirs_pss is None else f"{theirs_pss:9.0f} kB", fmt_ratio(ratio(ours_pss, theirs_pss)),
                 f"<= {GOAL_MEMORY_KB:.0f} kB", verdict(ours_pss, GOAL_MEMORY_KB)))
    headers = ("", "lxcframe median (min–max)", "LXC median (min–max)", "ratio", "goal", "")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print()
    for side, label in (("lxcframe", "lxcframe (monitor)"), ("lxc", "LXC ([lxc monitor])")):
        data = per[side]
        if data is None:
            print(f"{label}: not measured")
            continue
        count = memory[side]["containers"]
        print(f"{label}: {count} containers, {data['processes']:.1f} host process(es) each, per container "
              f"PSS {data['pss']:.0f} kB, USS {data['uss']:.0f} kB, RSS {data['rss']:.0f} kB")


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of (a) and (b) (default 20)")
    parser.add_argument("--containers", type=int, default=20, help="running containers of each kind in (c)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 3 runs, 3 containers, 1 warm-up")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep the environment's bytecode settings (default: cache in the temp dir)")
    parser.add_argument("--tmpdir", help="where the temporary directory is made (default: $TMPDIR or /tmp)")
    parser.add_argument("--server", choices=("on", "off", "env"), default="env",
                        help="lxcframe's commands as thin clients of its warm server (LXCFRAME_SERVER=1), or each "
                             "in its own process; default: as the environment says")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.containers, args.warmup = 3, 3, 1
    problems = preflight()
    if problems:
        print("lifecycle bench: " + "; ".join(problems), file=sys.stderr)
        return 2

    versions = run(["lxc-start", "--version"]).stdout.strip()
    lf_version = run([sys.executable, "-m", "lxcframe", "--version"]).stdout.strip()
    print(f"{lf_version} ({sys.executable}) vs LXC {versions}, kernel {os.uname().release}")
    print(f"runs: {args.runs} (+{args.warmup} warm-up), containers for memory: {args.containers}")
    print("bytecode: " + ("as the environment says" if args.no_bytecode_cache else "cached in the temp dir"))

    failures = Failures()
    pivots_before = pivot_cgroups()
    tmp = tempfile.mkdtemp(prefix="lxcframe-bench-", dir=args.tmpdir)
    bench = Bench(tmp, failures, bytecode_cache=not args.no_bytecode_cache)
    if args.server != "env":
        bench.env["LXCFRAME_SERVER"] = "1" if args.server == "on" else "0"
    print("commands: " + ("thin clients of the warm server" if bench.env.get("LXCFRAME_SERVER") == "1"
                          else "each in its own process"))
    interrupted = False
    leaked: list[str] = []
    execute: tuple[Samples, Samples] = (Samples(), Samples())
    cycle = {key: Samples() for key in ("lf_start", "lxc_start", "lf_stop", "lxc_stop")}
    memory: dict[str, Any] = {}
    try:
        with interrupts_as_keyboard_interrupt():
            plugins = bench.lf("plugins", "--format", "json")
            if plugins.returncode == 0:
                enabled = [p["name"] for p in json.loads(plugins.stdout) if p["state"] == "enabled"]
                print(f"lxcframe plugins enabled: {', '.join(enabled)}")
            print(f"working in {tmp}\n", flush=True)
            if bench.make_proto():
                print("lxc.cgroup.relative = 1: " + ("handled by lxcframe, set on both sides"
                      if bench.lxcframe_relative else "not handled by lxcframe here, set on LXC's side only"))
                execute = bench_execute(bench, args.runs, args.warmup)
                cycle = bench_start_stop(bench, args.runs, args.warmup)
                memory = bench_memory(bench, args.containers)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: cleaning up", file=sys.stderr)
    finally:
        # A second Ctrl-C must not leave containers behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            problems = bench.cleanup()
            left = leftovers(tmp)
            # A runtime that leaves its cgroups behind is reported, then the empty ones are removed.
            leaked = container_cgroups(bench.lxcframe_made + bench.lxc_made)
            problems += remove_cgroups(leaked)
            problems += remove_new_pivots(pivots_before)
            if not left:
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)
    if not interrupted:
        report(execute, cycle, memory)
    return end_report(leaked, problems, left, tmp, failures, interrupted)


if __name__ == "__main__":
    sys.exit(main())
