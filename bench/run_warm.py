#!/usr/bin/env python3
"""The warm lxcframe process of ``bench/run.py``: one interpreter that imported lxcframe once and makes
library calls on request, so that rows P3 and P8 and the warm half of ``--profile`` time the library's
own work and not an interpreter's start.

It reads one JSON request per line on stdin and answers each with one JSON line on the descriptor that
was its stdout; its own stdout becomes /dev/null first, because an attached command writes to the
caller's stdout. Requests (``op``):

* ``start``/``stop``: ``names``, ``threads`` — start each until RUNNING (``Container.start``) or stop it
  with ``kill=True``, from ``threads`` threads (1: in the main thread, no thread is made); answers
  ``ms``, the wall time of all of them;
* ``attach``: ``name``, ``busy`` — ``attach_wait(["/bin/true"])`` while ``busy`` threads spin in
  Python; answers ``ms`` and ``tasks`` (the threads of this process during the call, from /proc);
* ``cli``: ``argv`` — the command line's ``main(argv, here=True)``, as the server's worker runs it;
* any of them with ``profile`` (a path): run under cProfile, the stats written there.

An error is answered as ``{"error": "..."}``; the process carries on.
"""

from __future__ import annotations

import cProfile
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

_containers: dict[str, Any] = {}


def _container(lxcpath: str, name: str) -> Any:
    from lxcframe.container import Container

    if name not in _containers:
        _containers[name] = Container(name, lxcpath)
    return _containers[name]


def _tasks() -> int:
    return len(os.listdir("/proc/self/task"))


def _alone() -> None:
    """Wait until this process is one thread again: a joined thread leaves /proc/self/task a moment later."""
    deadline = time.monotonic() + 2.0
    while _tasks() > 1 and time.monotonic() < deadline:
        time.sleep(0.001)


def _in_threads(call: Callable[[str], None], names: list[str], threads: int) -> None:
    """``call`` on every name, from ``threads`` threads taking names off one queue; the first error raised."""
    if threads <= 1:
        for name in names:
            call(name)
        return
    todo: queue.Queue[str] = queue.Queue()
    for name in names:
        todo.put(name)
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            try:
                name = todo.get_nowait()
            except queue.Empty:
                return
            try:
                call(name)
            except Exception as err:  # reported to the bench, which carries on
                errors.append(err)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]


def _start(lxcpath: str, names: list[str], threads: int) -> dict[str, Any]:
    def start(name: str) -> None:
        container = _container(lxcpath, name)
        container.start()
        if container.state != "RUNNING":
            raise RuntimeError(f"{name}: {container.state} after start() returned")

    began = time.perf_counter()
    _in_threads(start, names, threads)
    return {"ms": (time.perf_counter() - began) * 1000}


def _stop(lxcpath: str, names: list[str], threads: int) -> dict[str, Any]:
    began = time.perf_counter()
    _in_threads(lambda name: _container(lxcpath, name).stop(kill=True), names, threads)
    return {"ms": (time.perf_counter() - began) * 1000}


def _attach(lxcpath: str, name: str, busy: int) -> dict[str, Any]:
    container = _container(lxcpath, name)
    stop = threading.Event()
    ready = threading.Barrier(busy + 1) if busy else None

    def spin() -> None:
        assert ready is not None
        ready.wait()
        count = 0
        while not stop.is_set():
            count += 1  # pure Python: holds the GIL as a caller's busy threads would

    spinners = [threading.Thread(target=spin) for _ in range(busy)]
    for spinner in spinners:
        spinner.start()
    try:
        if ready is not None:
            ready.wait()
        else:
            _alone()
        tasks = _tasks()
        began = time.perf_counter()
        status = container.attach_wait(["/bin/true"])
        elapsed = (time.perf_counter() - began) * 1000
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()
    if status != 0:
        raise RuntimeError(f"attach_wait(['/bin/true']) in {name} exited {status}")
    return {"ms": elapsed, "tasks": tasks}


def _cli(argv: list[str]) -> dict[str, Any]:
    from lxcframe.cli.main import main

    began = time.perf_counter()
    code = main(argv, here=True)
    elapsed = (time.perf_counter() - began) * 1000
    if code != 0:
        raise RuntimeError(f"lxcframe {' '.join(argv)} exited {code}")
    return {"ms": elapsed}


def _answer(request: dict[str, Any], lxcpath: str) -> dict[str, Any]:
    op = request["op"]
    calls: dict[str, Callable[[], dict[str, Any]]] = {
        "start": lambda: _start(lxcpath, request["names"], request.get("threads", 1)),
        "stop": lambda: _stop(lxcpath, request["names"], request.get("threads", 1)),
        "attach": lambda: _attach(lxcpath, request["name"], request.get("busy", 0)),
        "cli": lambda: _cli(request["argv"]),
    }
    if op not in calls:
        raise ValueError(f"unknown op {op!r}")
    if not request.get("profile"):
        return calls[op]()
    profiler = cProfile.Profile()
    answer = profiler.runcall(calls[op])
    profiler.dump_stats(request["profile"])
    return answer


def main() -> int:
    lxcpath = sys.argv[1]
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    for line in sys.stdin:
        try:
            answer = _answer(json.loads(line), lxcpath)
        except Exception as err:
            answer = {"error": f"{type(err).__name__}: {err}"}
        replies.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
