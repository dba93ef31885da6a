"""The timed rows of ``bench/run.py``: each builds its containers, interleaves lxcframe's side(s) with LXC's
round by round, and returns its rows of the table."""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from functools import partial

from common import run, timed, write_text
from run_bench import MODE_LABELS, RunBench, Side, WarmWorker, cli_side, interleave, warm_side
from run_report import Row, ratio_row, spread, verdict
from startup import console_script

GOAL_EXECUTE = 1.5
GOAL_START_STOP = 1.5
GOAL_WARM_START = 1.0
GOAL_LS = 1.0
GOAL_MANY = 1.0
GOAL_ATTACH_BUSY = 2.0
GOAL_VERSION_MS = 15.0
#: Containers of each kind running for P6 with a veth each.
LS_CONTAINERS = 20
#: Containers P8 starts, and the threads that start them.
MANY_CONTAINERS = 100
MANY_THREADS = 8
#: P8's rounds are long (a hundred starts a side): at most this many.
MANY_ROUNDS = 3


def p1_execute(bench: RunBench, rounds: int, warmup: int) -> tuple[list[Row], dict[str, list[float]]]:
    lf, lxc = bench.make_lxcframe("exec"), bench.make_lxc("exec")
    ours: dict[str, list[float]] = {mode: [] for mode in bench.modes}
    theirs: list[float] = []
    print(f"P1 execute -- /bin/true: {rounds} rounds", flush=True)
    sides: list[Side] = []
    if lf is not None:
        sides += [cli_side(bench, f"lxcframe execute ({MODE_LABELS[mode]})",
                           [partial(bench.lf_as, mode, "execute", lf, "--", "/bin/true")], ours[mode])
                  for mode in bench.modes]
    if lxc is not None:
        sides.append(cli_side(bench, "lxc-execute", [lambda: bench.lxc_execute(lxc)], theirs))
    interleave(sides, rounds, warmup)
    rows = [ratio_row("P1", f"`execute -- /bin/true` ({MODE_LABELS[mode]})", ours[mode], theirs, GOAL_EXECUTE)
            for mode in bench.modes]
    return rows, ours


def p2_start_stop(bench: RunBench, rounds: int, warmup: int) -> tuple[list[Row], dict[str, list[float]]]:
    lf, lxc = bench.make_lxcframe("cycle"), bench.make_lxc("cycle")
    starts: dict[str, list[float]] = {mode: [] for mode in bench.modes}
    stops: dict[str, list[float]] = {mode: [] for mode in bench.modes}
    lxc_starts: list[float] = []
    lxc_stops: list[float] = []
    print(f"P2 start until RUNNING, stop -k until STOPPED: {rounds} rounds", flush=True)
    sides: list[Side] = []

    def cycle(start: Side, stop: Side) -> Side:
        def both(record: bool) -> None:
            start(record)
            stop(record)
        return both

    if lf is not None:
        for mode in bench.modes:
            label = MODE_LABELS[mode]
            sides.append(cycle(
                cli_side(bench, f"lxcframe start ({label})", [partial(bench.lf_as, mode, "start", lf)],
                         starts[mode]),
                cli_side(bench, f"lxcframe stop -k ({label})",
                         [partial(bench.lf_as, mode, "stop", "-k", lf)], stops[mode])))
    if lxc is not None:
        sides.append(cycle(cli_side(bench, "lxc-start", bench.lxc_start(lxc), lxc_starts),
                           cli_side(bench, "lxc-stop -k", bench.lxc_stop(lxc), lxc_stops)))
    interleave(sides, rounds, warmup)
    rows = []
    for mode in bench.modes:
        label = MODE_LABELS[mode]
        rows.append(ratio_row("P2", f"`start` until RUNNING ({label}) vs `lxc-start` + `lxc-wait`", starts[mode],
                              lxc_starts, GOAL_START_STOP))
        rows.append(ratio_row("P2", f"`stop -k` until STOPPED ({label}) vs `lxc-stop -k` + `lxc-wait`",
                              stops[mode], lxc_stops, GOAL_START_STOP))
    return rows, starts


def p3_warm_start(bench: RunBench, rounds: int, warmup: int) -> list[Row]:
    lf, lxc = bench.make_lxcframe("warm"), bench.make_lxc("warm")
    ours: list[float] = []
    theirs: list[float] = []
    print(f"P3 Container.start() in a warm process: {rounds} rounds", flush=True)
    sides: list[Side] = []
    if lf is not None:
        worker = bench.warm_worker()
        sides.append(warm_side(bench, worker, "Container.start()", {"op": "start", "names": [lf]}, ours,
                               after={"op": "stop", "names": [lf]}))
    if lxc is not None:
        sides.append(cli_side(bench, "lxc-start (P3)", bench.lxc_start(lxc), theirs, after=bench.lxc_stop(lxc)))
    interleave(sides, rounds, max(warmup, 1))  # the warm process's first start imports the start's modules
    bench.close_workers()
    return [ratio_row("P3", "`Container.start()` in a warm process until RUNNING vs `lxc-start` + `lxc-wait`",
                      ours, theirs, GOAL_WARM_START)]


def _no_ipv6_script(bench: RunBench) -> str:
    """The veths' ``script.up``: the host end gets no IPv6, so not even a link-local address on the host."""
    path = os.path.join(bench.tmp, "host-end-no-ipv6")
    # Both runtimes call it as: SCRIPT NAME net up veth HOST_END.
    write_text(path, '#!/bin/sh\necho 1 > "/proc/sys/net/ipv6/conf/$5/disable_ipv6"\n')
    os.chmod(path, 0o755)
    return path


def p6_ls_fancy(bench: RunBench, rounds: int, warmup: int, count: int) -> list[Row]:
    print(f"P6 ls --fancy with {count} running of each, a veth each: {rounds} rounds", flush=True)
    script = _no_ipv6_script(bench)
    addresses: dict[str, str] = {}
    for index in range(count):
        for name, net in ((bench.make_lxcframe(f"ls{index:02d}"), "192.0.2"),
                          (bench.make_lxc(f"ls{index:02d}"), "198.51.100")):
            if name is None:
                continue
            addresses[name] = f"{net}.{index + 1}"
            # The host end is named after the run (lf<id>v00), so that one left behind is recognised.
            bench.set_network(name, ["lxc.net.0.type = veth", f"lxc.net.0.veth.pair = {name[:8]}v{index:02d}",
                                     "lxc.net.0.flags = up", f"lxc.net.0.ipv4.address = {addresses[name]}/24",
                                     f"lxc.net.0.script.up = {script}"])
    running = bench.start_all(list(addresses), "P6")
    lf_running = [n for n in running if n.startswith("lf")]
    lxc_running = [n for n in running if not n.startswith("lf")]

    def shows_all(names: list[str]) -> Callable[[str], str | None]:
        def check(output: str) -> str | None:
            missing = [f"{n} ({addresses[n]})" for n in names if n not in output or addresses[n] not in output]
            return f"not listed with its address: {', '.join(missing)}" if missing else None
        return check

    ours: dict[str, list[float]] = {mode: [] for mode in bench.modes}
    theirs: list[float] = []
    sides = [cli_side(bench, f"lxcframe ls --fancy ({MODE_LABELS[mode]})",
                      [partial(bench.lf_as, mode, "ls", "--fancy")], ours[mode],
                      check=shows_all(lf_running))
             for mode in bench.modes]
    sides.append(cli_side(bench, "lxc-ls --fancy", [lambda: run(["lxc-ls", "--fancy", "-P", bench.lxc_path])],
                          theirs, check=shows_all(lxc_running)))
    try:
        interleave(sides, rounds, warmup)
    finally:
        bench.stop_all(running, "P6")
    note = f"with {len(lf_running)} lxcframe and {len(lxc_running)} LXC containers running"
    return [ratio_row("P6", f"`ls --fancy` ({MODE_LABELS[mode]}), {note}", ours[mode], theirs, GOAL_LS)
            for mode in bench.modes]


def p7_version(bench: RunBench, rounds: int, warmup: int) -> list[Row]:
    script, why_not = console_script()
    if script is None:
        bench.failures.add("P7: the lxcframe console script", None, why_not)
        return []
    print(f"P7 {script} --version against python -c pass: {rounds} rounds", flush=True)
    bare: list[float] = []
    ours: dict[str, list[float]] = {mode: [] for mode in bench.modes}
    sides = [cli_side(bench, "python -c pass", [lambda: run([sys.executable, "-c", "pass"], env=bench.env)], bare)]
    sides += [cli_side(bench, f"lxcframe --version ({MODE_LABELS[mode]})",
                       [partial(run, [script, "--version"], env=bench.mode_env(mode))], ours[mode])
              for mode in bench.modes]
    interleave(sides, rounds, max(warmup, 1))  # the warm-up fills the bytecode cache
    rows = []
    for mode in bench.modes:
        extra = statistics.median(ours[mode]) - statistics.median(bare) if ours[mode] and bare else None
        rows.append(Row("P7", f"`lxcframe --version` minus `python -c pass` ({MODE_LABELS[mode]})",
                        spread(ours[mode]), f"python -c pass: {spread(bare)}",
                        "n/a" if extra is None else f"{extra:+.1f} ms", f"≤ {GOAL_VERSION_MS:g} ms",
                        verdict(extra, GOAL_VERSION_MS)))
    return rows


def p8_many(bench: RunBench, rounds: int, warmup: int, count: int) -> list[Row]:
    rounds = min(rounds, MANY_ROUNDS)
    print(f"P8 {count} containers from {MANY_THREADS} threads vs {count} sequential lxc-start: {rounds} rounds",
          flush=True)
    lf_names = [n for n in (bench.make_lxcframe(f"n{i:03d}") for i in range(count)) if n is not None]
    lxc_names = [n for n in (bench.make_lxc(f"n{i:03d}") for i in range(count)) if n is not None]
    worker = bench.warm_worker()
    ours: list[float] = []
    theirs: list[float] = []
    every_start = [step for name in lxc_names for step in bench.lxc_start(name)]

    def lxc_side(record: bool) -> None:
        elapsed, result = timed(every_start)
        if result.returncode != 0:
            bench.failures.add("P8 sequential lxc-start", result)
        elif record:
            theirs.append(elapsed)
        bench.stop_all([n for n in lxc_names if bench.lxc("lxc-info", n, "-s", "-H").stdout.strip() != "STOPPED"],
                       "P8")

    threads = {"names": lf_names, "threads": MANY_THREADS}
    interleave([warm_side(bench, worker, f"P8 start from {MANY_THREADS} threads", {"op": "start", **threads}, ours,
                          after={"op": "stop", **threads}),
                lxc_side], rounds, warmup=0 if warmup == 0 else 1)
    rows = [ratio_row("P8", f"{len(lf_names)} started to RUNNING from {MANY_THREADS} threads of one process vs "
                      f"{len(lxc_names)} sequential `lxc-start` + `lxc-wait` (wall clock)", ours, theirs, GOAL_MANY)]
    rows.append(_attach_busy(bench, worker, rounds=max(rounds, 3), warmup=warmup))
    bench.close_workers()
    return rows


def _attach_busy(bench: RunBench, worker: WarmWorker, rounds: int, warmup: int) -> Row:
    name = bench.make_lxcframe("attach")
    one: list[float] = []
    busy: list[float] = []
    print(f"P8 attach_wait(['/bin/true']) with {MANY_THREADS} busy threads vs one thread: {rounds} rounds",
          flush=True)
    if name is not None:
        started = worker.ask(op="start", names=[name])
        if "error" in started:
            bench.failures.add("P8 attach: start", None, started["error"])
        else:
            interleave([warm_side(bench, worker, "attach_wait, one-thread caller",
                                  {"op": "attach", "name": name, "busy": 0}, one, tasks=1),
                        warm_side(bench, worker, f"attach_wait, {MANY_THREADS} busy threads",
                                  {"op": "attach", "name": name, "busy": MANY_THREADS}, busy,
                                  tasks=MANY_THREADS + 1)], rounds, max(warmup, 1))
            stopped = worker.ask(op="stop", names=[name])
            if "error" in stopped:
                bench.failures.add("P8 attach: stop", None, stopped["error"])
    return ratio_row("P8", f"`attach_wait([\"/bin/true\"])`: caller with {MANY_THREADS} busy threads vs a "
                     "one-thread caller (both lxcframe)", busy, one, GOAL_ATTACH_BUSY,
                     theirs_text=f"one-thread caller: {spread(one)}")


def first_command(bench: RunBench, rounds: int, warm_execute: dict[str, list[float]],
                  warm_start: dict[str, list[float]]) -> list[Row]:
    """The first command of a host (a fresh run directory, no server yet), each mode, execute and start."""
    name = bench.make_lxcframe("first")
    if name is None:
        return []
    print(f"first command in a fresh run directory: {rounds} rounds", flush=True)
    rows = []
    for mode in bench.modes:
        label = MODE_LABELS[mode]
        times: dict[str, list[float]] = {"execute": [], "start": []}
        for index in range(rounds):
            for verb, argv in (("execute", ["execute", name, "--", "/bin/true"]), ("start", ["start", name])):
                env = bench.mode_env(mode, LXCFRAME_RUNDIR=os.path.join(bench.tmp, f"first-{mode}-{verb}-{index}"))
                elapsed, result = timed([partial(run, [sys.executable, "-m", "lxcframe", "-P", bench.lf_path, *argv],
                                                 env=env)])
                if result.returncode != 0:
                    bench.failures.add(f"first {verb} ({label})", result)
                    continue
                times[verb].append(elapsed)
                if verb == "start":
                    stop = run([sys.executable, "-m", "lxcframe", "-P", bench.lf_path, "stop", "-k", name], env=env)
                    if stop.returncode != 0:
                        bench.failures.add(f"first start ({label}): stop -k", stop)
        for verb, warm in (("execute", warm_execute.get(mode, [])), ("start", warm_start.get(mode, []))):
            cold = times[verb]
            extra = statistics.median(cold) - statistics.median(warm) if cold and warm else None
            rows.append(Row("first", f"`{verb}` ({label})", spread(cold), spread(warm),
                            "n/a" if extra is None else f"{extra:+.1f} ms", "", ""))
    return rows
