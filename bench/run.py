#!/usr/bin/env python3
"""lxcframe's speed goals side by side with LXC, in one command, written to bench/results/latest.md.

Every row runs both runtimes on the same busybox rootfs and the equivalent config lifecycle.py uses
(common.py's Bench, config lines, cleanup and leak checks), interleaved round by round:

P1 execute -- /bin/true; P2 start until RUNNING and stop -k until STOPPED (the command line); P3
Container.start() in a warm process; P4 the host PSS of every host process of each runtime with N and 2N
running; P6 ls --fancy with 20 running, a veth each; P8 100 started from 8 threads of one process against
100 sequential lxc-start, and attach_wait from a caller with 8 busy threads; P7 lxcframe --version against
python -c pass. Also the first command on a host where no lxcframe server runs yet.

    python3 bench/run.py [--quick] [--runs N] [--server on|off|both] [--only P1,P4] [--profile ROW]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ROWS = ("P7", "P1", "P2", "FIRST", "P3", "P6", "P8", "P4")
#: The rows --profile knows (run_profile's command-line and library rows).
PROFILED = ("P1", "P2", "P6", "P7", "P3", "P8")
#: lxcframe's dependencies, some imported only by a start (seccomp's) or by a veth (P6's pyroute2).
NEEDED = ("attrs", "pluggy", "pyroute2", "structlog", "pyseccomp")
SERVERS_GONE_S = 30.0


def interpreter_with_lxcframe() -> str | None:
    """The project's venv interpreter when this one lacks lxcframe's dependencies (``python3`` of the host),
    else None: the bench then runs under this one."""
    if all(importlib.util.find_spec(name) is not None for name in NEEDED):
        return None
    venv = os.path.join(REPO, ".venv")
    # Not the interpreter's real path: a venv's python is a link to the very binary it was made from.
    return os.path.join(venv, "bin", "python") if os.path.isdir(venv) and sys.prefix != venv else None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 runs, N=3 for P4, 10 containers for P8, 5 for P6, 1 warm-up")
    parser.add_argument("--runs", type=int, help="timed rounds of each row (default 20; P8 at most 3)")
    parser.add_argument("--warmup", type=int, help="untimed rounds first (default 2)")
    parser.add_argument("--containers", type=int, help="N of P4: measured with N and 2N running (default 10)")
    parser.add_argument("--server", choices=("on", "off", "both"), default="both",
                        help="lxcframe's commands as thin clients of its server (LXCFRAME_SERVER=1), each in its own "
                             "process (0), or a row of each (default both)")
    parser.add_argument("--only", help=f"comma-separated rows of {','.join(ROWS)} (default all)")
    parser.add_argument("--profile", metavar="ROW", help="print where one lxcframe call of ROW spends its time")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "latest.md"),
                        help="the markdown table (default bench/results/latest.md)")
    parser.add_argument("--tmpdir", help="where the temporary directory is made (default: $TMPDIR or /tmp)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep the environment's bytecode settings (default: cache in the temp dir)")
    args = parser.parse_args()
    quick = args.quick
    args.runs = args.runs or (3 if quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    args.containers = args.containers or (3 if quick else 10)
    args.ls_containers = 5 if quick else 20
    args.many = 10 if quick else 100
    args.modes = ["off", "on"] if args.server == "both" else [args.server]
    rows = [r.strip().upper() for r in args.only.split(",")] if args.only else list(ROWS)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"--only: unknown row(s) {', '.join(unknown)} (rows: {', '.join(ROWS)})")
    args.rows = [r for r in ROWS if r in rows]
    if args.profile:
        args.profile = args.profile.upper()
        if args.profile not in PROFILED:
            parser.error(f"--profile: {args.profile} is not a timed row of lxcframe's (P4 measures memory: its notes "
                         f"list each process); choose one of {', '.join(PROFILED)}")
    return args


def thin_clients(bench: Any) -> str:
    """Whether lxcframe's commands ran as thin clients, checked: a served command's client imports neither
    the argument parser nor the container module (the server's worker does)."""
    from common import run

    parts = []
    if "on" in bench.modes:
        served = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not served:
            result = run([sys.executable, "-X", "importtime", "-m", "lxcframe", "-P", bench.lf_path, "ls"],
                         env=bench.mode_env("on"))
            cold = ("lxcframe.cli.parser", "lxcframe.container")
            served = result.returncode == 0 and not any(line.rstrip().endswith(cold)
                                                        for line in result.stderr.splitlines())
            if not served:
                time.sleep(0.2)  # the first command started the server, which takes ~0.1 s to listen
        parts.append("rows marked (thin client): yes, LXCFRAME_SERVER=1 — checked: a command's client imported "
                     "neither lxcframe.cli.parser nor lxcframe.container" if served else
                     "rows marked (thin client): LXCFRAME_SERVER=1, but the check found the client running the "
                     "command itself")
    if "off" in bench.modes:
        parts.append("rows marked (own process): no, LXCFRAME_SERVER=0 (each command imports and runs lxcframe; "
                     "daemon starts still go through the supervisor)")
    return "; ".join(parts)


def measure(bench: Any, args: argparse.Namespace) -> tuple[list[Any], list[Any], list[str]]:
    import run_memory
    import run_rows

    rows: list[Any] = []
    first: list[Any] = []
    notes: list[str] = []
    warm_execute: dict[str, list[float]] = {}
    warm_start: dict[str, list[float]] = {}
    for row in args.rows:
        if row == "P7":
            rows += run_rows.p7_version(bench, args.runs, args.warmup)
        elif row == "P1":
            found, warm_execute = run_rows.p1_execute(bench, args.runs, args.warmup)
            rows += found
        elif row == "P2":
            found, warm_start = run_rows.p2_start_stop(bench, args.runs, args.warmup)
            rows += found
        elif row == "FIRST":
            first = run_rows.first_command(bench, args.runs, warm_execute, warm_start)
        elif row == "P3":
            rows += run_rows.p3_warm_start(bench, args.runs, args.warmup)
        elif row == "P6":
            rows += run_rows.p6_ls_fancy(bench, args.runs, args.warmup, args.ls_containers)
        elif row == "P8":
            rows += run_rows.p8_many(bench, args.runs, args.warmup, args.many)
        elif row == "P4":
            found, p4_notes = run_memory.p4_memory(bench, args.containers)
            rows += found
            notes += p4_notes
    return rows, first, notes


def wait_for_servers(tmp: str) -> list[int]:
    """Wait for every lxcframe process of this run (servers leave a few seconds after their last monitor)."""
    from run_memory import lxcframe_processes

    deadline = time.monotonic() + SERVERS_GONE_S
    while (left := lxcframe_processes(tmp, below=True)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def links_of(bench: Any) -> list[str]:
    """Host links named after this run's containers (veth host ends are ``lf<id>…``/``lx<id>…``)."""
    prefixes = (bench.lf_name("")[:7], bench.lxc_name("")[:7])
    return sorted(link for link in os.listdir("/sys/class/net") if link.startswith(prefixes))


def clean_up(bench: Any, tmp: str, pivots_before: set[str]) -> tuple[list[str], list[str], list[str]]:
    """Stop and destroy everything; (problems, processes and mounts left, cgroups left behind by a runtime)."""
    from common import cmdline, container_cgroups, leftovers, remove_cgroups, remove_new_pivots

    bench.close_workers()
    problems: list[str] = bench.cleanup()
    # common.leftovers looks for the directory in command lines; a server names it only in its environment.
    left = leftovers(tmp) + [f"process {pid}: {cmdline(pid)}" for pid in wait_for_servers(tmp)]
    left += [f"link {link}" for link in links_of(bench)]
    leaked: list[str] = container_cgroups(bench.lxcframe_made + bench.lxc_made)
    problems += remove_cgroups(leaked)
    problems += remove_new_pivots(pivots_before)
    if not left:
        shutil.rmtree(tmp, ignore_errors=True)
    return problems, left, leaked


def main() -> int:
    args = parse_args()
    better = interpreter_with_lxcframe()
    if better is not None:
        print(f"{sys.executable} cannot import all of {', '.join(NEEDED)}: running under {better}", flush=True)
        os.execv(better, [better, os.path.abspath(__file__), *sys.argv[1:]])

    import attrs
    import run_report
    from common import Failures, end_report, interrupts_as_keyboard_interrupt, pivot_cgroups, preflight, run
    from run_bench import RunBench

    problems = preflight()
    if problems:
        print("run bench: " + "; ".join(problems), file=sys.stderr)
        return 2
    failures = Failures()
    pivots_before = pivot_cgroups()
    tmp = tempfile.mkdtemp(prefix="lxcframe-bench-", dir=args.tmpdir)
    bench = RunBench(tmp, failures, args.modes, bytecode_cache=not args.no_bytecode_cache)
    print(f"working in {tmp}", flush=True)
    # Asked before anything runs: a command after the cleanup would write its bytecode into the removed directory.
    facts = run_report.HostFacts(
        kernel=os.uname().release, cores=run_report.cores(), cpu=run_report.cpu_model(),
        python=f"{sys.executable} ({sys.version.split()[0]})",
        lxcframe=run([sys.executable, "-m", "lxcframe", "--version"], env=bench.env).stdout.strip(),
        lxc=run(["lxc-start", "--version"]).stdout.strip(), thin_clients="",
        settings=f"{args.runs} rounds (+{args.warmup} warm-up), P4 N={args.containers}, P6 {args.ls_containers} "
                 f"running, P8 {args.many} containers; bytecode "
                 + ("as the environment says" if args.no_bytecode_cache else "cached in the temp dir"))
    interrupted = False
    code = 0
    rows: list[Any] = []
    first: list[Any] = []
    notes: list[str] = []
    thin = ""
    try:
        with interrupts_as_keyboard_interrupt():
            if bench.make_proto():
                print("lxc.cgroup.relative = 1: " + ("set on both sides" if bench.lxcframe_relative
                      else "not handled by lxcframe here, set on LXC's side only"), flush=True)
                if args.profile:
                    import run_profile

                    code = run_profile.profile(bench, args.profile)
                else:
                    thin = thin_clients(bench)
                    rows, first, notes = measure(bench, args)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: cleaning up", file=sys.stderr)
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave containers
        try:
            problems, left, leaked = clean_up(bench, tmp, pivots_before)
        finally:
            signal.signal(signal.SIGINT, previous)
    if not interrupted and not args.profile:
        facts = attrs.evolve(facts, thin_clients=thin)
        command = "python3 bench/run.py " + " ".join(sys.argv[1:])
        run_report.print_table(rows, first, facts, notes)
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(run_report.markdown(rows, first, facts, command.strip(), notes))
        print(f"\nwritten to {args.output}")
    status = end_report(leaked, problems, left, tmp, failures, interrupted)
    return status if interrupted else code or status


if __name__ == "__main__":
    sys.exit(main())
