#!/usr/bin/env python3
"""What the library's own work costs, without the interpreter's start: warm ``Container`` calls.

Times, in one long-lived process, on a busybox container below this process's own cgroups:

* ``execute(["/bin/true"])``;
* ``start()`` until RUNNING, then ``stop(kill=True)`` until STOPPED;
* ``attach_wait(["/bin/true"])`` into the running container.

The calls are interleaved round by round so that noise slows them alike; medians with min and max.
To compare two trees (before and after a change), run it under each with ``PYTHONPATH=TREE``,
alternating, and compare the medians; ``--json`` prints them for a script.

    python3 bench/warm_calls.py [--runs 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable


def _timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return (time.perf_counter() - began) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    if os.geteuid() != 0:
        print("warm_calls: run as root (containers need it)", file=sys.stderr)
        return 1

    from lxcframe.container import Container

    with tempfile.TemporaryDirectory(prefix="lxcframe-bench-") as lxcpath:
        os.environ.setdefault("LXCFRAME_RUNDIR", os.path.join(lxcpath, "run"))
        container = Container("bench", lxcpath)
        container.create("busybox", config=(("lxc.cgroup.relative", "1"),))
        samples: dict[str, list[float]] = {"execute": [], "start": [], "stop -k": [], "attach": []}
        try:
            for round_number in range(options.warmup + options.runs):
                figures = {"execute": _timed(lambda: container.execute(["/bin/true"]))}
                figures["start"] = _timed(container.start)
                figures["attach"] = _timed(lambda: container.attach_wait(["/bin/true"]))
                figures["stop -k"] = _timed(lambda: container.stop(kill=True))
                if round_number >= options.warmup:
                    for name, value in figures.items():
                        samples[name].append(value)
        finally:
            if container.running:
                container.stop(kill=True)
            container.destroy(force=True)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    if options.json:
        print(json.dumps(medians))
        return 0
    print(f"{'call':<10} {'median':>9} {'min':>9} {'max':>9}   ({options.runs} runs)")
    for name, values in samples.items():
        print(f"{name:<10} {medians[name]:>7.2f}ms {min(values):>7.2f}ms {max(values):>7.2f}ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
