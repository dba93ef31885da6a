"""``bench/run.py --profile ROW``: where one lxcframe call of that row spends its time.

A command in its own process (``--server off``) is profiled with cProfile around the whole client. A
thin client's command (``--server on``) runs in a worker of the server, which a profiler of the client
does not see: the client's own imports are shown (``python -X importtime``), then the same call made
twice in a warm process (``run_warm.py``), the second time under cProfile, as the server's worker makes
it from its warm state.
"""

from __future__ import annotations

import os
import pstats
import sys

from common import run
from run_bench import MODE_LABELS, RunBench, WarmWorker
from run_rows import MANY_THREADS, _no_ipv6_script

TOP = 25
CLI_ROWS = ("P1", "P2", "P6", "P7")
LIBRARY_ROWS = ("P3", "P8")


def _print_stats(path: str, title: str) -> None:
    print(f"\n--- {title}: cProfile, by cumulative time, top {TOP}")
    stats = pstats.Stats(path, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(TOP)


def _print_importtime(stderr: str) -> None:
    """The client's imports (``-X importtime``), the largest cumulative first."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        own, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|", 2))
        entries.append((int(cumulative), int(own), name))
    total = sum(entry[1] for entry in entries)
    print(f"\n--- the client's imports: {len(entries)} modules, {total / 1000:.1f} ms in all; largest cumulative:")
    for cumulative_us, self_us, name in sorted(entries, reverse=True)[:15]:
        print(f"{cumulative_us / 1000:8.2f} ms  (self {self_us / 1000:6.2f})  {name}")


def _cli_commands(bench: RunBench, row: str) -> tuple[list[list[str]], list[str]]:
    """The command line(s) of ``row`` and the containers started for it (P6's), their containers made."""
    if row == "P7":
        return [["--version"]], []
    if row == "P1":
        name = bench.make_lxcframe("exec")
        return ([] if name is None else [["-P", bench.lf_path, "execute", name, "--", "/bin/true"]]), []
    if row == "P2":
        name = bench.make_lxcframe("cycle")
        if name is None:
            return [], []
        return [["-P", bench.lf_path, "start", name], ["-P", bench.lf_path, "stop", "-k", name]], []
    script = _no_ipv6_script(bench)
    names = [n for n in (bench.make_lxcframe(f"ls{i:02d}") for i in range(5)) if n is not None]
    for index, name in enumerate(names):
        bench.set_network(name, ["lxc.net.0.type = veth", "lxc.net.0.flags = up",
                                 f"lxc.net.0.veth.pair = {name[:8]}v{index:02d}",
                                 f"lxc.net.0.ipv4.address = 192.0.2.{index + 1}/24", f"lxc.net.0.script.up = {script}"])
    return [["-P", bench.lf_path, "ls", "--fancy"]], bench.start_all(names, "profile P6")


def _profile_client(bench: RunBench, argv: list[str]) -> None:
    path = os.path.join(bench.tmp, "client.prof")
    result = run([sys.executable, "-m", "cProfile", "-o", path, "-m", "lxcframe", *argv], env=bench.mode_env("off"))
    if result.returncode != 0:
        bench.failures.add(f"profiling lxcframe {' '.join(argv)}", result)
        return
    _print_stats(path, f"lxcframe {' '.join(argv)} (own process, the whole client)")


def _profile_warm(bench: RunBench, worker: WarmWorker, requests: list[dict[str, object]], title: str) -> None:
    """Each request once to warm the process up, then each again under cProfile."""
    for profiled in (False, True):
        for number, request in enumerate(requests):
            path = os.path.join(bench.tmp, f"warm-{number}.prof")
            answer = worker.ask(**request, profile=path if profiled else "")
            if "error" in answer:
                bench.failures.add(f"warm {request['op']}", None, answer["error"])
            elif profiled:
                call = request.get("argv") or ", ".join(f"{k}={v}" for k, v in request.items() if k != "names")
                _print_stats(path, f"{title}: {call} in a warm process, {answer['ms']:.1f} ms")


def profile(bench: RunBench, row: str) -> int:
    if row in CLI_ROWS:
        commands, started = _cli_commands(bench, row)
        try:
            for mode in bench.modes:
                print(f"\n===== {row}, {MODE_LABELS[mode]} =====")
                if mode == "off":
                    for argv in commands:
                        _profile_client(bench, argv)
                    continue
                print("The command runs in a worker the server forks from its warm state; below are the client's "
                      "own imports, then the same call in a warm process.")
                for argv in commands:
                    result = run([sys.executable, "-X", "importtime", "-m", "lxcframe", *argv],
                                 env=bench.mode_env("on"))
                    if result.returncode != 0:
                        bench.failures.add(f"lxcframe {' '.join(argv)}", result)
                    _print_importtime(result.stderr)
                _profile_warm(bench, bench.warm_worker(), [{"op": "cli", "argv": argv} for argv in commands],
                              "the worker's share")
        finally:
            bench.stop_all(started, "profile P6")
        return 0
    if row in LIBRARY_ROWS:
        name = bench.make_lxcframe("warm")
        if name is None:
            return 1
        worker = bench.warm_worker()
        if row == "P3":
            _profile_warm(bench, worker, [{"op": "start", "names": [name]}, {"op": "stop", "names": [name]}], row)
            return 0
        answer = worker.ask(op="start", names=[name])
        if "error" in answer:
            bench.failures.add("start", None, answer["error"])
            return 1
        try:
            _profile_warm(bench, worker, [{"op": "attach", "name": name, "busy": 0},
                                          {"op": "attach", "name": name, "busy": MANY_THREADS}], row)
        finally:
            worker.ask(op="stop", names=[name])
        return 0
    raise ValueError(f"--profile {row}: not a timed row (parse_args lets only {CLI_ROWS + LIBRARY_ROWS} through)")
