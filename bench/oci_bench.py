#!/usr/bin/env python3
"""How long OCI runtimes take for a whole container lifecycle, bare and under podman.

For runc, crun and lxcframe-oci (when built: ``LXCFRAME_OCI_RUNTIME``, ``PATH``, or this checkout's
``.venv/bin``), interleaved (one of each per round, so that a noisy neighbour slows all alike):

- ``create+start+delete``: a busybox bundle running ``/bin/true``, as a caller of the runtime sees
  it: ``create`` (this process is the subreaper the init reparents to, as conmon is), ``start``,
  the init's exit (waitpid), ``delete``;
- ``podman run --rm /bin/true``: a private podman (vfs storage, no network) with ``--runtime PATH``.

lxcframe-oci is timed twice: as it runs by default (each command a cold interpreter), and as
``lxcframe-oci (served)``, with the warm server of its ``--root`` running as an operator would start
it (``LXCFRAME_RUNDIR=<root>/.run python -m lxcframe.supervisor``), which takes ``start`` and
``delete``; ``create`` runs in the caller's process either way. The served row has no podman figure
(podman's cleanup calls the runtime with its own root).

Prints a markdown table of the median (min–max) in ms of ``--runs`` rounds, after ``--warmup``
rounds; a runtime that fails a step shows its first error instead (crun fails on hybrid cgroups).

    sudo .venv/bin/python bench/oci_bench.py [--runs 10] [--warmup 1] [--no-podman]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from lxcframe.run_root import listening_pid  # noqa: E402
from lxcframe.syscalls import PR_SET_CHILD_SUBREAPER, prctl  # noqa: E402
from tests.oci_tiers.podman import DEFAULT_ROOTS, IMAGE, Podman  # noqa: E402
from tests.oci_tiers.runtimes import lxcframe_oci_path, make_bundle, make_busybox_rootfs  # noqa: E402

TIMEOUT = 60.0


class Failed(Exception):
    """A step of a measured lifecycle failed: the message is what the runtime said."""


def _run(argv: list[str], env: dict[str, str] | None = None, output: Path | None = None) -> None:
    """Run ``argv``; its output goes to the file ``output`` if given (a ``create``, whose init keeps the
    stdio it inherits: a pipe would not reach its end before the container's does)."""
    try:
        if output is None:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                                  timeout=TIMEOUT, check=False)
            said = (done.stderr or done.stdout).strip()
        else:
            with open(output, "w+") as out:
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, text=True, env=env,
                                      timeout=TIMEOUT, check=False)
                out.seek(0)
                said = out.read().strip()
    except subprocess.TimeoutExpired as err:
        raise Failed(f"{argv[0]} {argv[1:3]} timed out after {TIMEOUT}s") from err
    if done.returncode != 0:
        raise Failed(f"{' '.join(argv[:4])}… exited {done.returncode}: {said[-300:]}")


#: The name of lxcframe-oci's row with the root's server running.
SERVED = "lxcframe-oci (served)"


def root_of(work: Path, name: str) -> Path:
    return work / f"root-{name.replace(' (served)', '-served')}"


def runtimes() -> list[tuple[str, str]]:
    found = []
    for name in ("runc", "crun"):
        path = shutil.which(name)
        if path:
            found.append((name, path))
    under_test = lxcframe_oci_path()
    if under_test:
        found += [("lxcframe-oci", under_test), (SERVED, under_test)]
    return found


@contextlib.contextmanager
def root_server(runtime: str, root: Path, work: Path) -> Iterator[None]:
    """The warm server of ``root``'s run directory, run by the runtime's own interpreter (the client uses
    only a server of its own installation) from ``work`` (not this checkout); waited for until it leaves."""
    interpreter = Path(runtime).read_text().splitlines()[0].removeprefix("#!").strip()
    rundir = root / ".run"
    rundir.mkdir(parents=True, exist_ok=True)
    # Rounds of the other runtimes come between this runtime's: 10 s without work is the end of the bench.
    env = {**os.environ, "LXCFRAME_RUNDIR": str(rundir), "LXCFRAME_SUPERVISOR_IDLE": "10"}
    subprocess.run([interpreter, "-m", "lxcframe.supervisor"], env=env, cwd=work, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TIMEOUT, check=True)
    deadline = time.monotonic() + TIMEOUT
    pid = None
    while pid is None and time.monotonic() < deadline:
        pid = listening_pid(str(rundir / "supervisor.sock"))
        time.sleep(0.02)
    if pid is None:
        raise Failed(f"no server of {rundir} within {TIMEOUT} s")
    try:
        yield
    finally:
        # It leaves once idle, removing its socket; one that does not is ended by its pid.
        deadline = time.monotonic() + 30
        while (rundir / "supervisor.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if (rundir / "supervisor.sock").exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def version(path: str) -> str:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except OSError:
        return "?"
    first = done.stdout.strip().splitlines()[:1]
    return first[0].split()[-1] if first else "?"


#: The commands of a lifecycle, each timed on its own too.
STEPS = ("create", "start", "delete")


def lifecycle(path: str, root: Path, bundle: Path, number: int) -> tuple[float, dict[str, float]]:
    """create, start, wait for the init, delete; wall ms in all, and of each command."""
    cid = f"bench-{number}"
    pid_file = root.parent / f"{cid}.pid"
    steps: dict[str, float] = {}
    start = time.perf_counter()
    try:
        _run([path, "--root", str(root), "create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid],
             output=root.parent / f"{cid}.out")
        steps["create"] = (time.perf_counter() - start) * 1000.0
        init = int(pid_file.read_text().strip())
        began = time.perf_counter()
        _run([path, "--root", str(root), "start", cid])
        steps["start"] = (time.perf_counter() - began) * 1000.0
        os.waitpid(init, 0)  # reparented here: this process is a subreaper
        began = time.perf_counter()
        _run([path, "--root", str(root), "delete", cid])
        steps["delete"] = (time.perf_counter() - began) * 1000.0
        return (time.perf_counter() - start) * 1000.0, steps
    except Failed:
        subprocess.run([path, "--root", str(root), "delete", "--force", cid], capture_output=True, timeout=TIMEOUT,
                       check=False)
        raise
    finally:
        pid_file.unlink(missing_ok=True)
        (root.parent / f"{cid}.out").unlink(missing_ok=True)


def podman_run(engine: Podman) -> float:
    start = time.perf_counter()
    _run(engine.argv(*engine.run_args("--rm", IMAGE, "/bin/true")), env=engine.env)
    return (time.perf_counter() - start) * 1000.0


def cell(values: list[float], error: str | None) -> str:
    if error == "–":
        return error
    if error is not None:
        return f"failed: {error}".replace("|", "/").replace("\n", " ")
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--no-podman", action="store_true", help="time the bare runtimes only")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if os.geteuid() != 0:
        parser.error("needs root (containers)")
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    found = runtimes()
    work = Path(tempfile.mkdtemp(prefix="lxcframe-oci-bench-"))
    # podman's cleanup calls the runtime with no --root: a default root it makes is removed at the end.
    roots_before = {path for path in DEFAULT_ROOTS.values() if os.path.exists(path)}
    engines: dict[str, Podman] = {}
    servers = contextlib.ExitStack()
    try:
        rootfs = make_busybox_rootfs(work / "rootfs")
        bundle = make_bundle(work / "bundle", rootfs, ["/bin/true"])
        if not args.no_podman:
            import tarfile

            with tarfile.open(work / "rootfs.tar", "w") as tar:
                tar.add(rootfs, arcname=".")
        rows = ["create+start+delete"] + ([] if args.no_podman else ["podman run --rm /bin/true"])
        samples: dict[tuple[str, str], list[float]] = {(name, row): [] for name, _ in found for row in rows}
        step_samples: dict[tuple[str, str], list[float]] = {(name, step): [] for name, _ in found for step in STEPS}
        errors: dict[tuple[str, str], str] = {}
        for name, path in found:
            if name == SERVED:
                errors[(name, "podman run --rm /bin/true")] = "–"
            elif not args.no_podman:
                engines[name] = Podman(path)
                engines[name].import_image(work / "rootfs.tar")
        for name, path in found:
            if name == SERVED:
                servers.enter_context(root_server(path, root_of(work, name), work))
        number = 0
        for round_number in range(args.warmup + args.runs):
            for name, path in found:
                for row in rows:
                    if (name, row) in errors:
                        continue
                    number += 1
                    try:
                        if row == "create+start+delete":
                            elapsed, steps = lifecycle(path, root_of(work, name), bundle, number)
                            if round_number >= args.warmup:
                                for step, value in steps.items():
                                    step_samples[(name, step)].append(value)
                        else:
                            elapsed = podman_run(engines[name])
                    except Failed as err:
                        errors[(name, row)] = str(err)
                        continue
                    if round_number >= args.warmup:
                        samples[(name, row)].append(elapsed)
        print(f"OCI runtimes, median (min–max) ms of {args.runs} runs, after {args.warmup} warm-up round(s)\n")
        print("| runtime | version | " + " | ".join(rows) + " |")
        print("|---|---|" + "---|" * len(rows))
        for name, path in found:
            cells = [cell(samples[(name, row)], errors.get((name, row))) for row in rows]
            print(f"| {name} | {version(path)} | " + " | ".join(cells) + " |")
        print("\nEach command of the lifecycle, median (min–max) ms\n")
        print("| runtime | " + " | ".join(STEPS) + " |")
        print("|---|" + "---|" * len(STEPS))
        for name, _path in found:
            error = errors.get((name, "create+start+delete"))
            cells = [cell(step_samples[(name, step)], "see above" if error else None) for step in STEPS]
            print(f"| {name} | " + " | ".join(cells) + " |")
        if not lxcframe_oci_path():
            print("\nlxcframe-oci: not built (no LXCFRAME_OCI_RUNTIME, none on PATH or in .venv/bin)")
        return 0
    finally:
        servers.close()
        for engine in engines.values():
            for problem in engine.teardown():
                print(f"cleanup: {problem}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        for path in set(DEFAULT_ROOTS.values()) - roots_before:
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only when empty: what a runtime still keeps there is reported by its cleanup


if __name__ == "__main__":
    sys.exit(main())
