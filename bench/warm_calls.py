#!/usr/bin/env python3
"""What the library's own work costs, without the interpreter's start: warm ``Container`` calls.

Times, in a long-lived process, on a busybox container below this process's own cgroups:

* ``execute(["/bin/true"])``;
* ``start()`` until RUNNING, then ``stop(kill=True)`` until STOPPED;
* ``attach_wait(["/bin/true"])`` into the running container.

With ``--against TREE`` the same calls also run with the lxcframe of another source tree (say, a
``git worktree`` of the commit before a change), each tree in a worker process of its own, round by
round in turn, so that noise on the host slows both alike; the table then shows both medians and
the difference. Medians with min and max.

    python3 bench/warm_calls.py [--runs 30] [--against /tmp/base] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

CALLS = ("execute", "start", "attach", "stop -k")


def _timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return (time.perf_counter() - began) * 1000


def _worker(lxcpath: str) -> int:
    """Answer each line on stdin with one round's figures (JSON) on stdout."""
    from lxcframe.container import Container

    os.environ["LXCFRAME_RUNDIR"] = os.path.join(lxcpath, "run")
    container = Container("bench", lxcpath)
    container.create("busybox", config=(("lxc.cgroup.relative", "1"),))
    try:
        for _ in sys.stdin:
            figures = {"execute": _timed(lambda: container.execute(["/bin/true"]))}
            figures["start"] = _timed(container.start)
            figures["attach"] = _timed(lambda: container.attach_wait(["/bin/true"]))
            figures["stop -k"] = _timed(lambda: container.stop(kill=True))
            print(json.dumps(figures), flush=True)
    finally:
        if container.running:
            container.stop(kill=True)
        container.destroy(force=True)
    return 0


def _spawn(tree: str | None, lxcpath: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = tree
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", lxcpath], env=env,
                            cwd=tree or os.getcwd(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _round(worker: subprocess.Popen[str]) -> dict[str, float]:
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write("go\n")
    worker.stdin.flush()
    line = worker.stdout.readline()
    if not line:
        raise SystemExit("warm_calls: a worker died (see its error above)")
    figures: dict[str, float] = json.loads(line)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--against", metavar="TREE", help="another source tree to compare with")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", metavar="LXCPATH", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        return _worker(options.worker)
    if os.geteuid() != 0:
        print("warm_calls: run as root (containers need it)", file=sys.stderr)
        return 1
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees: dict[str, str | None] = {"this tree": here}
    if options.against:
        trees["against"] = os.path.abspath(options.against)
    samples: dict[str, dict[str, list[float]]] = {label: {call: [] for call in CALLS} for label in trees}
    with tempfile.TemporaryDirectory(prefix="lxcframe-bench-") as scratch:
        workers: dict[str, subprocess.Popen[str]] = {}
        try:
            for number, (label, tree) in enumerate(trees.items()):
                lxcpath = os.path.join(scratch, str(number))
                os.mkdir(lxcpath)
                workers[label] = _spawn(tree, lxcpath)
            for round_number in range(options.warmup + options.runs):
                for label, worker in workers.items():
                    figures = _round(worker)
                    if round_number >= options.warmup:
                        for call in CALLS:
                            samples[label][call].append(figures[call])
        finally:
            for worker in workers.values():
                if worker.stdin is not None:
                    worker.stdin.close()
                worker.wait()
    medians = {label: {call: statistics.median(values) for call, values in calls.items()}
               for label, calls in samples.items()}
    if options.json:
        print(json.dumps(medians))
        return 0
    _print_table(options, samples, medians)
    return 0


def _print_table(options: Any, samples: dict[str, dict[str, list[float]]],
                 medians: dict[str, dict[str, float]]) -> None:
    print(f"{options.runs} rounds, trees taking turns; median (min–max) in ms")
    labels = list(samples)
    header = f"{'call':<9}" + "".join(f"{label:>26}" for label in labels)
    if len(labels) == 2:
        header += f"{'difference':>13}"
    print(header)
    for call in CALLS:
        row = f"{call:<9}"
        for label in labels:
            values = samples[label][call]
            row += f"{medians[label][call]:>10.2f} ({min(values):6.2f}–{max(values):6.2f})"
        if len(labels) == 2:
            row += f"{medians[labels[0]][call] - medians[labels[1]][call]:>+13.2f}"
        print(row)


if __name__ == "__main__":
    raise SystemExit(main())
