"""What ``bench/run.py`` adds to common.py's :class:`Bench`: lxcframe's commands in either server mode,
the warm lxcframe process, the network lines of a container, and the interleaving of sides round by round."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from common import Bench, Failures, run, timed

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODE_LABELS = {"on": "thin client", "off": "own process"}

#: One side of a comparison: measures once and, when told to record, keeps what it measured.
Side = Callable[[bool], None]


def interleave(sides: list[Side], rounds: int, warmup: int) -> None:
    """Each side once per round, the order rotating, so that a noisy host slows every side alike."""
    for index in range(warmup + rounds):
        shift = index % len(sides) if sides else 0
        for side in sides[shift:] + sides[:shift]:
            side(index >= warmup)


class WarmWorker:
    """A long-lived interpreter with lxcframe imported (``run_warm.py``), asked for library calls."""

    def __init__(self, bench: RunBench) -> None:
        self.process = subprocess.Popen([sys.executable, os.path.join(HERE, "run_warm.py"), bench.lf_path],
                                        env=bench.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            return {"error": "the warm process is gone"}
        line = self.process.stdout.readline()
        if not line:
            return {"error": f"the warm process ended (exit status {self.process.wait()})"}
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class RunBench(Bench):
    """The shared bench with lxcframe's commands run as thin clients of its server (``on``), each in
    its own process (``off``), or both."""

    def __init__(self, tmp: str, failures: Failures, modes: list[str], bytecode_cache: bool = True) -> None:
        super().__init__(tmp, failures, bytecode_cache=bytecode_cache)
        self.modes = modes
        # This tree's lxcframe, from whatever directory the bench is started in.
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, self.env.get("PYTHONPATH", "")) if p)
        # Set-up commands (create, start for memory) take the faster mode of those measured.
        self.env["LXCFRAME_SERVER"] = "1" if "on" in modes else "0"
        self.workers: list[WarmWorker] = []

    def mode_env(self, mode: str, **extra: str) -> dict[str, str]:
        return {**self.env, "LXCFRAME_SERVER": "1" if mode == "on" else "0", **extra}

    def lf_as(self, mode: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "-m", "lxcframe", "-P", self.lf_path, *args], env=self.mode_env(mode),
                   timeout=timeout)

    def warm_worker(self) -> WarmWorker:
        worker = WarmWorker(self)
        self.workers.append(worker)
        return worker

    def close_workers(self) -> None:
        while self.workers:
            self.workers.pop().close()

    def cleanup(self) -> list[str]:
        # An LXC container interrupted between its directory and its config is no container to lxc-destroy.
        for name in list(self.lxc_made):
            directory = os.path.join(self.lxc_path, name)
            if os.path.isdir(directory) and not os.path.exists(os.path.join(directory, "config")):
                shutil.rmtree(directory)
                self.lxc_made.remove(name)
        return super().cleanup()

    def config_path(self, name: str) -> str:
        base = self.lf_path if name.startswith("lf") else self.lxc_path
        return os.path.join(base, name, "config")

    def set_network(self, name: str, lines: list[str]) -> None:
        """Replace the container's ``lxc.net.*`` lines (LXC's ``type = empty``) with ``lines``."""
        path = self.config_path(name)
        with open(path, encoding="utf-8") as handle:
            kept = [line for line in handle.read().splitlines() if not line.startswith("lxc.net.")]
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join([*kept, *lines]) + "\n")

    def start_all(self, names: list[str], what: str) -> list[str]:
        """Start each (lxcframe or LXC, by name) until RUNNING; the names that are running."""
        running = []
        for name in names:
            steps = self.lf_start(name) if name.startswith("lf") else self.lxc_start(name)
            _, result = timed(steps)
            if result.returncode == 0:
                running.append(name)
            else:
                self.failures.add(f"start ({what})", result)
        return running

    def stop_all(self, names: list[str], what: str) -> None:
        for name in names:
            steps = self.lf_stop(name) if name.startswith("lf") else self.lxc_stop(name)
            _, result = timed(steps)
            if result.returncode != 0:
                self.failures.add(f"stop -k ({what})", result)


def cli_side(bench: RunBench, what: str, steps: list[Callable[[], subprocess.CompletedProcess[str]]],
             target: list[float], after: list[Callable[[], subprocess.CompletedProcess[str]]] | None = None,
             check: Callable[[str], str | None] | None = None) -> Side:
    """A side made of commands: ``steps`` timed (stopping at the first failure), ``check`` asked about the
    last one's output (a complaint or None), then ``after`` untimed."""

    def side(record: bool) -> None:
        elapsed, result = timed(steps)
        complaint = check(result.stdout) if check is not None and result.returncode == 0 else None
        if result.returncode != 0 or complaint:
            bench.failures.add(what, result, complaint or "")
        elif record:
            target.append(elapsed)
        if after:
            _, undo = timed(after)
            if undo.returncode != 0:
                bench.failures.add(f"{what}: undo", undo)

    return side


def warm_side(bench: RunBench, worker: WarmWorker, what: str, request: dict[str, Any], target: list[float],
              after: dict[str, Any] | None = None, tasks: int | None = None) -> Side:
    """A side made of a warm library call: ``request`` timed in the warm process, then ``after``."""

    def side(record: bool) -> None:
        answer = worker.ask(**request)
        if "error" in answer:
            bench.failures.add(what, None, answer["error"])
        elif tasks is not None and answer.get("tasks") != tasks:
            bench.failures.add(what, None, f"the caller had {answer.get('tasks')} threads, not {tasks}")
        elif record:
            target.append(float(answer["ms"]))
        if after is not None:
            undone = worker.ask(**after)
            if "error" in undone:
                bench.failures.add(f"{what}: undo", None, undone["error"])

    return side
