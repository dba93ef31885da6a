#!/usr/bin/env python3
"""The command line of this tree next to another tree's, round by round: did a change make commands slower?

``lifecycle.py`` compares lxcframe with LXC in one run; two of its runs, one per tree, differ by the
host's noise as much as by the change. This times, for this tree and ``--against TREE`` (say a ``git
worktree`` of the commit before a change) in turn within each round, the commands a user pays for
whole, interpreter start included:

* ``lxcframe execute NAME -- /bin/true``;
* ``lxcframe start NAME`` (returns once RUNNING);
* ``lxcframe stop -k NAME``.

Each tree runs with this interpreter and ``PYTHONPATH=TREE``, from ``/`` (so no working directory
shadows it), its own container (made by its own ``create``), run directory and bytecode cache (filled
by the warm-up rounds, as an installed package would have it). Medians with min and max, and this
tree minus the other. Needs root; busybox containers below this process's own cgroups.

    python3 bench/cli_against.py --against /tmp/before [--runs 20] [--warmup 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = ("execute", "start", "stop -k")
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Tree:
    def __init__(self, label: str, source: str, scratch: str) -> None:
        self.label = label
        self.lxcpath = os.path.join(scratch, label, "lxc")
        os.makedirs(self.lxcpath)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONDONTWRITEBYTECODE", "LXCFRAME_SERVER", "LXCFRAME_DISABLE_PLUGINS")}
        self.env.update(PYTHONPATH=source, PYTHONPYCACHEPREFIX=os.path.join(scratch, label, "pycache"),
                        LXCFRAME_RUNDIR=os.path.join(scratch, label, "run"),
                        LXCFRAME_HOST_CONFIG=os.path.join(scratch, "no-host-config.toml"))

    def cli(self, *args: str) -> float:
        """Milliseconds the command took; a failing command stops the bench."""
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "lxcframe", "-P", self.lxcpath, *args], env=self.env,
                              cwd="/", capture_output=True, text=True, check=False)
        elapsed = (time.perf_counter() - began) * 1000
        if done.returncode != 0:
            raise SystemExit(f"{self.label}: lxcframe {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return elapsed

    def round(self) -> dict[str, float]:
        return {"execute": self.cli("execute", "bench", "--", "/bin/true"), "start": self.cli("start", "bench"),
                "stop -k": self.cli("stop", "-k", "bench")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="the other source tree (a checkout of lxcframe)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    options = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="lxcframe-cli-against-", dir=os.environ.get("TMPDIR"))
    trees = [Tree("this", HERE, scratch), Tree("other", os.path.abspath(options.against), scratch)]
    samples: dict[str, dict[str, list[float]]] = {t.label: {c: [] for c in COMMANDS} for t in trees}
    try:
        for tree in trees:
            tree.cli("create", "bench", "-t", "busybox")
            with open(os.path.join(tree.lxcpath, "bench", "config"), "a", encoding="utf-8") as handle:
                handle.write("lxc.cgroup.relative = 1\n")
        for number in range(options.warmup + options.runs):
            for tree in trees if number % 2 == 0 else reversed(trees):
                figures = tree.round()
                if number >= options.warmup:
                    for command, value in figures.items():
                        samples[tree.label][command].append(value)
    finally:
        for tree in trees:
            subprocess.run([sys.executable, "-m", "lxcframe", "-P", tree.lxcpath, "destroy", "-f", "bench"],
                           env=tree.env, cwd="/", capture_output=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{options.runs} rounds, trees taking turns; median (min–max) in ms; against {options.against}")
    print(f"{'command':<10}{'this tree':>26}{'against':>26}{'difference':>12}")
    for command in COMMANDS:
        mine, theirs = samples["this"][command], samples["other"][command]
        cells = [f"{statistics.median(s):7.1f} ({min(s):6.1f}–{max(s):6.1f})" for s in (mine, theirs)]
        print(f"{command:<10}{cells[0]:>26}{cells[1]:>26}{statistics.median(mine) - statistics.median(theirs):+12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
