#!/usr/bin/env python3
"""Reading containers' addresses: lxcframe against LXC, with N running containers of the same shape each.

* ``get_ips()`` of every container, in one process: ``lxcframe.Container.get_ips`` (target-netnsid
  dumps, no fork) against python3-lxc's ``Container.get_ips`` (a fork and setns per call). python3-lxc
  is Debian's and imports only under /usr/bin/python3, so its side runs in a child of that interpreter
  and times itself.
* The same dump written with pyroute2 (AsyncIPRoute, strict check, IFA_TARGET_NETNSID typed as an
  int32), with its import time: why lxcframe's read path stays on its raw layer while pyroute2
  configures the networks.
* ``--facts``: only lxcframe containers (no LXC needed), and the three facts that keep the read path
  raw, each checked against the kernel: pyroute2 0.9.7 types IFA_TARGET_NETNSID as a string,
  ``get_addr(target_nsid=…)`` returns ``[]`` for a container that has addresses, and one dump on a
  reused pyroute2 socket against one on a reused raw socket (and a whole ``get_ips``).
* ``lxcframe ls --fancy`` against ``lxc-ls --fancy``, wall time of the whole command.

Every container has one veth (no link, no bridge) with 198.51.100.N/24, flags up; the rootfs is a copy of
one made by ``lxcframe create -t busybox``. Everything lives in a temporary directory and is removed at
the end, also after an error or Ctrl-C. Needs root, lxc and python3-lxc; never starts lxc-net.

    python3 bench/netns_bench.py [--count 20] [--rounds 30] [--quick] [--facts]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

GET_IPS_GOAL = 5.0  # lxcframe at least this many times faster
LS_GOAL = 1.0  # lxcframe ls --fancy time / lxc-ls --fancy time at most this

LXC_CONFIG = """\
lxc.uts.name = {name}
lxc.rootfs.path = dir:{rootfs}
lxc.net.0.type = veth
lxc.net.0.ipv4.address = {address}/24
lxc.net.0.flags = up
lxc.cgroup.relative = 1
lxc.apparmor.profile = unconfined
lxc.mount.auto = proc:mixed sys:ro
lxc.autodev = 1
lxc.signal.halt = SIGUSR1
"""

# python3-lxc's side: answers each "round" line with the seconds one round of get_ips() took, so that
# rounds of both sides interleave and a noisy neighbour slows both alike.
PYTHON3_LXC_SIDE = """
import json, sys, time
import lxc
names, lxcpath = json.loads(sys.argv[1])
containers = [lxc.Container(name, lxcpath) for name in names]
print(json.dumps({c.name: list(c.get_ips()) for c in containers}), flush=True)
for line in sys.stdin:
    start = time.perf_counter()
    for c in containers:
        c.get_ips()
    print(time.perf_counter() - start, flush=True)
"""


class Interrupted(Exception):
    pass


def _on_signal(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def lxcframe_command() -> list[str]:
    """The installed ``lxcframe`` script of this interpreter, else ``python -m lxcframe``."""
    own = os.path.join(sys.prefix, "bin", "lxcframe")
    if os.path.isfile(own) and os.access(own, os.X_OK):
        return [own]
    return [sys.executable, "-m", "lxcframe"]


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000.0


class Bench:
    def __init__(self, count: int, rounds: int) -> None:
        self.count = count
        self.rounds = rounds
        self.tmp = tempfile.mkdtemp(prefix="lxcframe-netns-bench-")
        self.ours_path = os.path.join(self.tmp, "lxcframe")
        self.lxc_path = os.path.join(self.tmp, "lxc")
        os.environ["LXCFRAME_RUNDIR"] = os.path.join(self.tmp, "run")  # nothing under /run/lxcframe
        self.ours: list[Any] = []
        self.lxc_names: list[str] = []
        self.expected: dict[str, list[str]] = {}

    # --- set-up ------------------------------------------------------------------------------------

    def setup(self, with_lxc: bool = True) -> None:
        from lxcframe.container import Container
        from lxcframe.plugin_manager import Plugins

        os.makedirs(self.ours_path)
        os.makedirs(self.lxc_path)
        plugins = Plugins()
        source = Container("source", os.path.join(self.tmp, "source"), plugins=plugins)
        source.create("busybox")
        source_rootfs = source.load_config().get("lxc.rootfs.path")
        for i in range(1, self.count + 1):
            name = f"f{i}"
            container = Container(name, self.ours_path, plugins=plugins)
            container.create("busybox", config=(("lxc.net.0.type", "veth"), ("lxc.net.0.flags", "up"),
                                                ("lxc.net.0.ipv4.address", f"198.51.100.{i}/24")))
            self.ours.append(container)
            container.start()
            self.expected[name] = [f"198.51.100.{i}"]
        if not with_lxc:
            return
        for i in range(1, self.count + 1):
            name = f"l{i}"
            directory = os.path.join(self.lxc_path, name)
            rootfs = os.path.join(directory, "rootfs")
            os.makedirs(directory)
            shutil.copytree(source_rootfs, rootfs, symlinks=True)
            with open(os.path.join(directory, "config"), "w") as handle:
                handle.write(LXC_CONFIG.format(name=name, rootfs=rootfs, address=f"198.51.100.{100 + i}"))
            self.lxc_names.append(name)
            result = run(["lxc-start", "-n", name, "-P", self.lxc_path, "-d"])
            if result.returncode != 0:
                raise RuntimeError(f"lxc-start {name}: {result.stderr.strip()}")
            self.expected[name] = [f"198.51.100.{100 + i}"]
        for name in self.lxc_names:
            run(["lxc-wait", "-n", name, "-P", self.lxc_path, "-s", "RUNNING", "-t", "10"])

    # --- measurements ------------------------------------------------------------------------------

    def get_ips(self) -> tuple[list[float], list[float]]:
        """Rounds of get_ips() over every container: (lxcframe, python3-lxc), interleaved."""
        got = {c.name: list(c.get_ips()) for c in self.ours}
        assert got == {c.name: self.expected[c.name] for c in self.ours}, got
        theirs_side = subprocess.Popen(["/usr/bin/python3", "-c", PYTHON3_LXC_SIDE,
                                        json.dumps([self.lxc_names, self.lxc_path])],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert theirs_side.stdin is not None and theirs_side.stdout is not None
        try:
            first = json.loads(theirs_side.stdout.readline() or "null")
            assert first == {n: self.expected[n] for n in self.lxc_names}, first
            ours, theirs = [], []
            for _ in range(self.rounds):
                start = time.perf_counter()
                for container in self.ours:
                    container.get_ips()
                ours.append(time.perf_counter() - start)
                theirs_side.stdin.write("round\n")
                theirs_side.stdin.flush()
                theirs.append(float(theirs_side.stdout.readline()))
        finally:
            theirs_side.stdin.close()
            theirs_side.wait(30)
        return ours, theirs

    def pyroute2_get_ips(self) -> tuple[float, list[float]]:
        """The same target-netnsid dump through pyroute2, one socket for all calls (its best case)."""
        import asyncio

        started = time.perf_counter()
        from pyroute2 import AsyncIPRoute
        from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST
        from pyroute2.netlink.rtnl import RTM_GETADDR
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
        import_s = time.perf_counter() - started

        class TargetedAddrMsg(ifaddrmsg):
            # pyroute2 0.9 types IFA_TARGET_NETNSID as a string, which the kernel rejects.
            nla_map = tuple((name, "int32" if name == "IFA_TARGET_NETNSID" else kind)
                            for name, kind in ifaddrmsg.nla_map)

        nsids = [c.current_state().plugins["netns"]["nsid"] for c in self.ours]

        async def one(ipr: Any, nsid: int) -> list[str]:
            msg = TargetedAddrMsg()
            msg["family"] = socket.AF_UNSPEC
            msg["attrs"] = [("IFA_TARGET_NETNSID", nsid)]
            found = []
            async for reply in await ipr.nlm_request(msg, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP):
                if reply["scope"] == 0 and reply["index"] != 1:
                    found.append(reply.get_attr("IFA_LOCAL") or reply.get_attr("IFA_ADDRESS"))
            return found

        async def main() -> list[float]:
            async with AsyncIPRoute(strict_check=True) as ipr:
                got = [await one(ipr, nsid) for nsid in nsids]
                assert got == [self.expected[c.name] for c in self.ours], got
                times = []
                for _ in range(self.rounds):
                    start = time.perf_counter()
                    for nsid in nsids:
                        await one(ipr, nsid)
                    times.append(time.perf_counter() - start)
                return times

        return import_s, asyncio.run(main())

    def raw_dump_only(self) -> list[float]:
        """lxcframe's dump without the state file: the netlink part of get_ips alone."""
        from lxcframe.plugins.netns import inspect

        refs = [inspect.NetnsRef.from_state(c.current_state()) for c in self.ours]
        times = []
        for _ in range(self.rounds):
            start = time.perf_counter()
            for ref in refs:
                inspect.get_ips(ref)
            times.append(time.perf_counter() - start)
        return times

    def facts(self) -> dict[str, Any]:
        """The three facts that keep the read path on the raw layer, checked on the running containers."""
        import asyncio

        from pyroute2 import AsyncIPRoute, IPRoute
        from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST
        from pyroute2.netlink.rtnl import RTM_GETADDR
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

        from lxcframe.plugins.netns import rawlink

        found: dict[str, Any] = {"nla_type": dict(ifaddrmsg.nla_map)["IFA_TARGET_NETNSID"]}
        nsids = [c.current_state().plugins["netns"]["nsid"] for c in self.ours]
        expected = [self.expected[c.name] for c in self.ours]
        # As documented (no strict check): the id becomes a filter on the answers, which none matches.
        with IPRoute() as ipr:
            found["get_addr"] = [list(ipr.get_addr(target_nsid=nsid)) for nsid in nsids]
        # With the strict check the kernel needs, the filter goes into the request and cannot be encoded.
        with IPRoute(strict_check=True) as ipr:
            try:
                found["get_addr_strict"] = repr(ipr.get_addr(target_nsid=nsids[0]))
            except Exception as err:  # what pyroute2 raises is the fact being recorded
                found["get_addr_strict"] = f"{type(err).__name__}: {err}"
        with rawlink.RtnlSocket(strict=True) as sock:
            raw = [[a.address for a in rawlink.dump_addresses(sock, nsid, keep=lambda s, i: s == 0 and i != 1)[0]]
                   for nsid in nsids]
        assert raw == expected, raw
        found["raw_addresses"] = raw

        class TargetedAddrMsg(ifaddrmsg):
            nla_map = tuple((name, "int32" if name == "IFA_TARGET_NETNSID" else kind)
                            for name, kind in ifaddrmsg.nla_map)
            # pyroute2 compiles an nla_map once per class and the flag is inherited: ifaddrmsg's was
            # compiled by the get_addr above, so without this the subclass would use it.
            _nlmsg_base__compiled_nla = False

        async def one(ipr: Any, nsid: int) -> list[str]:
            msg = TargetedAddrMsg()
            msg["family"] = socket.AF_UNSPEC
            msg["attrs"] = [("IFA_TARGET_NETNSID", nsid)]
            return [reply.get_attr("IFA_LOCAL") or reply.get_attr("IFA_ADDRESS")
                    async for reply in await ipr.nlm_request(msg, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP)
                    if reply["scope"] == 0 and reply["index"] != 1]

        async def pyroute2_rounds() -> list[float]:
            async with AsyncIPRoute(strict_check=True) as ipr:
                assert [await one(ipr, nsid) for nsid in nsids] == expected
                times = []
                for _ in range(self.rounds):
                    start = time.perf_counter()
                    for nsid in nsids:
                        await one(ipr, nsid)
                    times.append((time.perf_counter() - start) / len(nsids))
                return times

        found["pyroute2_dump"] = asyncio.run(pyroute2_rounds())
        raw_times = []
        with rawlink.RtnlSocket(strict=True) as sock:
            for _ in range(self.rounds):
                start = time.perf_counter()
                for nsid in nsids:
                    rawlink.dump_addresses(sock, nsid, keep=lambda s, i: s == 0 and i != 1)
                raw_times.append((time.perf_counter() - start) / len(nsids))
        found["raw_dump"] = raw_times
        get_ips_times = []
        for _ in range(self.rounds):
            start = time.perf_counter()
            for container in self.ours:
                container.get_ips()
            get_ips_times.append((time.perf_counter() - start) / len(self.ours))
        found["get_ips"] = get_ips_times
        return found

    def ls_fancy(self) -> dict[str, list[float]]:
        """Wall times of ``ls --fancy`` of both, and of lxcframe's plain ``ls`` (its fixed cost)."""
        commands = {
            "ours": [*lxcframe_command(), "-P", self.ours_path, "ls", "--fancy"],
            "lxc": ["lxc-ls", "-P", self.lxc_path, "--fancy"],
            "ours_plain": [*lxcframe_command(), "-P", self.ours_path, "ls"],
        }
        # As installed: with byte code (kept under the temporary directory, not in the source tree).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(self.tmp, "pycache")
        for key, names in (("ours", [c.name for c in self.ours]), ("lxc", self.lxc_names)):
            out = run(commands[key], env=env).stdout
            missing = [n for n in names if self.expected[n][0] not in out]
            assert not missing, f"{commands[key][0]}: no address shown for {missing}:\n{out}"
        times: dict[str, list[float]] = {key: [] for key in commands}
        for _ in range(max(5, self.rounds // 3)):  # interleaved, so that a noisy neighbour slows all alike
            for key, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
                times[key].append(time.perf_counter() - start)
        return times

    # --- tear-down ---------------------------------------------------------------------------------

    pivots_before: set[str] = set()

    def cleanup(self) -> None:
        problems = []
        for container in self.ours:
            try:
                if container.defined:
                    container.destroy(force=True)
            except Exception as err:
                problems.append(f"{container.name}: {err}")
        for name in self.lxc_names:
            run(["lxc-stop", "-k", "-n", name, "-P", self.lxc_path])
        shutil.rmtree(self.tmp, ignore_errors=True)
        problems += _remove_new_lxc_pivots(self.pivots_before)
        for problem in problems:
            print(f"cleanup: {problem}", file=sys.stderr)


def _lxc_pivots() -> set[str]:
    # LXC's monitor moves itself to "lxc.pivot" (below its base cgroup) to remove its container's
    # cgroups, and leaves it there; with lxc.cgroup.relative = 1 that is below our own cgroups.
    found = set()
    with open("/proc/self/cgroup") as handle:
        own = {line.split(":", 2)[1]: line.split(":", 2)[2].strip() for line in handle}
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        key = "" if hierarchy == "unified" else ("name=systemd" if hierarchy == "systemd" else hierarchy)
        base = own.get(key)
        if base is None:
            continue
        path = os.path.join("/sys/fs/cgroup", hierarchy, base.lstrip("/"), "lxc.pivot")
        if os.path.isdir(path):
            found.add(path)
    return found


def _remove_new_lxc_pivots(before: set[str]) -> list[str]:
    problems = []
    for path in sorted(_lxc_pivots() - before):
        try:
            os.rmdir(path)
        except OSError as err:
            problems.append(f"cgroup {path}: {err.strerror}")
    return problems


def report(count: int, results: dict[str, Any]) -> bool:
    ours, theirs = median_ms(results["ours"]), median_ms(results["lxc"])
    raw = median_ms(results["raw"])
    import_s, pyroute2_rounds = results["pyroute2"]
    pyr = median_ms(pyroute2_rounds)
    speedup = theirs / ours
    ls_ours, ls_lxc, ls_plain = (median_ms(results["ls"][key]) for key in ("ours", "lxc", "ours_plain"))
    ls_ratio = ls_ours / ls_lxc
    print(f"\nget_ips() of {count} running containers, one process (median of rounds):")
    print(f"  lxcframe Container.get_ips   {ours:8.2f} ms  ({ours / count * 1000:7.1f} us/container)")
    print(f"  python3-lxc get_ips          {theirs:8.2f} ms  ({theirs / count * 1000:7.1f} us/container)")
    print(f"  speedup                      {speedup:8.1f} x   (goal >= {GET_IPS_GOAL:.0f}x: "
          f"{'met' if speedup >= GET_IPS_GOAL else 'NOT met'})")
    print("\nthe target-netnsid dump alone:")
    print(f"  raw socket + struct (lxcframe, new socket per call)  {raw:8.2f} ms")
    print(f"  pyroute2 AsyncIPRoute (one socket for all calls)      {pyr:8.2f} ms  + import {import_s * 1000:.0f} ms")
    print(f"\nls --fancy with {count} running containers each (median wall time):")
    print(f"  lxcframe ls --fancy          {ls_ours:8.1f} ms")
    print(f"  lxc-ls --fancy               {ls_lxc:8.1f} ms")
    print(f"  (lxcframe ls, names only     {ls_plain:8.1f} ms: the command's fixed cost)")
    print(f"  ratio                        {ls_ratio:8.2f}     (goal <= {LS_GOAL:.1f}: "
          f"{'met' if ls_ratio <= LS_GOAL else 'NOT met'})")
    return speedup >= GET_IPS_GOAL and ls_ratio <= LS_GOAL


def report_facts(count: int, found: dict[str, Any], import_s: float) -> bool:
    empty = all(answer == [] for answer in found["get_addr"])
    pyr, raw, whole = (median_ms(found[key]) for key in ("pyroute2_dump", "raw_dump", "get_ips"))
    print(f"\npyroute2 0.9.7 and the target-netnsid read path, {count} running containers:")
    print(f"  ifaddrmsg types IFA_TARGET_NETNSID as     {found['nla_type']!r} (the kernel wants an s32)")
    print(f"  IPRoute.get_addr(target_nsid=id) gives     {'[] for every container' if empty else found['get_addr']}"
          f" (raw dump: {found['raw_addresses']})")
    print(f"  the same with strict_check=True            {found['get_addr_strict']}")
    print(f"  one dump, pyroute2 socket reused           {pyr:8.3f} ms  (+ import {import_s * 1000:.0f} ms)")
    print(f"  one dump, raw socket reused                {raw:8.3f} ms  ({pyr / raw:.0f}x less)")
    print(f"  Container.get_ips() per container          {whole:8.3f} ms")
    return found["nla_type"] != "int32" and empty


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="containers of each kind (default 20)")
    parser.add_argument("--rounds", type=int, default=30, help="timed rounds (default 30)")
    parser.add_argument("--quick", action="store_true", help="3 containers, 10 rounds")
    parser.add_argument("--facts", action="store_true", help="lxcframe containers only: the three facts that "
                        "keep the read path off pyroute2")
    options = parser.parse_args()
    if options.quick:
        options.count, options.rounds = 3, 10
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    if not 1 <= options.count <= 99:
        print("--count must be between 1 and 99", file=sys.stderr)
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    bench = Bench(options.count, options.rounds)
    bench.pivots_before = _lxc_pivots()
    results: dict[str, Any] = {}
    try:
        kinds = "lxcframe" if options.facts else f"lxcframe and {options.count} LXC"
        print(f"starting {options.count} {kinds} containers in {bench.tmp} ...", flush=True)
        if options.facts:
            started = time.perf_counter()
            import pyroute2.iproute.linux  # noqa: F401
            results["import"] = time.perf_counter() - started
            bench.setup(with_lxc=False)
            results["facts"] = bench.facts()
        else:
            bench.setup()
            results["ours"], results["lxc"] = bench.get_ips()
            results["raw"] = bench.raw_dump_only()
            results["pyroute2"] = bench.pyroute2_get_ips()
            results["ls"] = bench.ls_fancy()
    except (Interrupted, KeyboardInterrupt) as err:
        print(f"interrupted ({err}); cleaning up", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        bench.cleanup()
    if options.facts:
        return 0 if report_facts(options.count, results["facts"], results["import"]) else 1
    return 0 if report(options.count, results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
