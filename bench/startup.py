#!/usr/bin/env python3
"""How long lxcframe's command line takes to start, next to the bare interpreter.

Runs each command ``--runs`` times, interleaved (one of each per round, so that a noisy neighbour
slows all of them alike), and prints the median, min and max wall time of each, then what
``--version`` costs on top of ``python -c pass``, against the goal.

    python3 bench/startup.py [--runs 30] [--warmup 3]
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

GOAL_MS = 15.0


def console_script() -> tuple[str | None, str]:
    """The installed ``lxcframe`` script of this interpreter's environment, or why there is none."""
    own = os.path.join(sys.prefix, "bin", "lxcframe")
    if os.path.isfile(own) and os.access(own, os.X_OK):
        return own, ""
    found = shutil.which("lxcframe")
    if found is None:
        return None, "no lxcframe on PATH"
    if "/shims/" in found:
        # A pyenv shim is a shell script that runs pyenv to choose an interpreter: not lxcframe's cost.
        return None, f"{found} is a pyenv shim and {own} does not exist"
    return found, ""


def shebang_interpreter(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            first = handle.readline(4096)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    return words[0] if words else None


def bytecode_env(cache_dir: str | None) -> dict[str, str]:
    """The environment of the timed commands: with ``cache_dir``, bytecode is cached there.

    With PYTHONDONTWRITEBYTECODE set (and no __pycache__ beside lxcframe's sources, as with an editable
    install), every run would compile lxcframe's modules from source, which an installed package never
    does. The private cache keeps the caller's tree untouched.
    """
    env = dict(os.environ)
    if cache_dir is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


def time_once(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    start = time.perf_counter()
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False)
    return (time.perf_counter() - start) * 1000.0, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each command (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep the environment's bytecode settings (default: cache in a private temp dir)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.warmup < 1 and not args.no_bytecode_cache:
        parser.error("--warmup must be at least 1 to fill the bytecode cache")
    cache_dir = None if args.no_bytecode_cache else tempfile.mkdtemp(prefix="lxcframe-bench-pyc-")
    try:
        return measure(args, bytecode_env(cache_dir), cache_dir)
    finally:
        if cache_dir is not None:
            shutil.rmtree(cache_dir, ignore_errors=True)


def measure(args: argparse.Namespace, env: dict[str, str], cache_dir: str | None) -> int:

    python = sys.executable
    commands: list[tuple[str, list[str]]] = [
        ("python -c pass", [python, "-c", "pass"]),
        ("python -m lxcframe --version", [python, "-m", "lxcframe", "--version"]),
    ]
    script, why_not = console_script()
    notes: list[str] = []
    if script is not None:
        commands.append(("lxcframe --version (console script)", [script, "--version"]))
        interpreter = shebang_interpreter(script)
        if interpreter and os.path.realpath(interpreter) != os.path.realpath(python):
            notes.append(f"note: {script} runs {interpreter}, not {python}")
    else:
        notes.append(f"console script skipped: {why_not}")
    commands.append(("lxcframe plugins", [python, "-m", "lxcframe", "plugins"]))

    print(f"interpreter: {python} ({sys.version.split()[0]})")
    if script is not None:
        print(f"console script: {script}")
    for note in notes:
        print(note)
    if cache_dir is not None:
        print(f"bytecode: cached in {cache_dir} (filled by the warm-up)")
    else:
        settings = ", ".join(f"{name}={os.environ.get(name, '')!r}"
                             for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"))
        print(f"bytecode: as the environment says ({settings})")
    print(f"runs: {args.runs} each, interleaved, after {args.warmup} warm-up round(s)\n")

    failed: dict[str, str] = {}
    for _ in range(args.warmup):
        for label, argv in commands:
            _, result = time_once(argv, env)
            if result.returncode != 0 and label not in failed:
                failed[label] = result.stderr.decode(errors="replace").strip()
    for label, message in failed.items():
        print(f"{label}: exits non-zero:\n{message}\n", file=sys.stderr)

    samples: dict[str, list[float]] = {label: [] for label, _ in commands}
    for _ in range(args.runs):
        for label, argv in commands:
            elapsed, _result = time_once(argv, env)
            samples[label].append(elapsed)

    medians = {label: statistics.median(values) for label, values in samples.items()}
    base = medians["python -c pass"]
    width = max(len(label) for label in samples)
    print(f"{'command':<{width}}  {'median':>9}  {'min':>9}  {'max':>9}  {'- python':>9}")
    for label, values in samples.items():
        extra = "" if label == "python -c pass" else f"{medians[label] - base:+8.1f}"
        print(f"{label:<{width}}  {medians[label]:8.1f}ms {min(values):8.1f}ms {max(values):8.1f}ms  {extra:>9}")
    print()
    for label in ("python -m lxcframe --version", "lxcframe --version (console script)"):
        if label not in medians:
            continue
        delta = medians[label] - base
        verdict = "PASS" if delta <= GOAL_MS else "MISS"
        print(f"{label} minus python -c pass: {delta:.1f} ms (goal <= {GOAL_MS:.0f} ms): {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
