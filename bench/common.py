"""What the benchmarks that run lxcframe next to LXC share (lifecycle.py, run.py): running and timing
commands, the two runtimes' containers on one busybox rootfs with equivalent configs (:class:`Bench`), the
host processes and memory of a container, and the cleanup and leak checks of a run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

LXC_TOOLS = ("lxc-execute", "lxc-start", "lxc-wait", "lxc-stop", "lxc-info", "lxc-destroy", "lxc-ls")

# --- running commands --------------------------------------------------------------------------


class Failures:
    """Every command that failed, printed as it happens (first time per kind) and summed up at the end."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, what: str, result: subprocess.CompletedProcess[str] | None, note: str = "") -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        if self.counts[what] > 1:
            return
        print(f"\n!! {what} failed{': ' + note if note else ''}", file=sys.stderr)
        if result is not None:
            print(f"   command: {' '.join(result.args)}", file=sys.stderr)
            print(f"   exit status: {result.returncode}", file=sys.stderr)
            for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
                if text and text.strip():
                    print(f"   {stream}:\n      " + text.strip().replace("\n", "\n      "), file=sys.stderr)
        print("   (carrying on; later failures of the same step are only counted)\n", file=sys.stderr)


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        stderr = _text(err.stderr) + f"\ntimed out after {timeout}s"
        return subprocess.CompletedProcess(argv, 124, _text(err.stdout), stderr)
    except OSError as err:
        return subprocess.CompletedProcess(argv, 127, "", str(err))


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


Step = Callable[[], "subprocess.CompletedProcess[str]"]


def timed(steps: list[Step]) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``steps`` in order, stopping at the first failure; wall time in ms and the last result."""
    start = time.perf_counter()
    result: subprocess.CompletedProcess[str] = subprocess.CompletedProcess([], 0)
    for step in steps:
        result = step()
        if result.returncode != 0:
            break
    return (time.perf_counter() - start) * 1000.0, result


class Bench:
    def __init__(self, tmp: str, failures: Failures, bytecode_cache: bool = True) -> None:
        self.tmp = tmp
        self.failures = failures
        self.lf_path = os.path.join(tmp, "lxcframe")
        self.lxc_path = os.path.join(tmp, "lxc")
        os.makedirs(self.lf_path)
        os.makedirs(self.lxc_path)
        self.env = dict(os.environ)
        self.env["LXCFRAME_RUNDIR"] = os.path.join(tmp, "run")
        # No host config: the operator's settings (disabled plugins, lxcpath) must not skew the figures.
        self.env["LXCFRAME_HOST_CONFIG"] = os.path.join(tmp, "no-host-config.toml")
        for name in ("LXCFRAME_DISABLE_PLUGINS", "LXCFRAME_DISABLE_PLUGIN_AUTOLOAD"):
            self.env.pop(name, None)
        if bytecode_cache:
            # With PYTHONDONTWRITEBYTECODE (and an editable install) every command would compile
            # lxcframe from source, which an installed package never does. Cache privately instead.
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
        self.lxcframe_made: list[str] = []
        self.lxc_made: list[str] = []
        self.proto_rootfs = ""
        # Names carry this run's id, so that whatever a runtime leaves behind (a cgroup named after the
        # container) is told apart from other users' with certainty.
        suffix = os.path.basename(tmp).rsplit("-", 1)[-1].lower()
        self.run_id = "".join(c for c in suffix if c.isalnum())[:5] or "0"
        self.lxcframe_relative = False

    def lf_name(self, what: str) -> str:
        return f"lf{self.run_id}-{what}"

    def lxc_name(self, what: str) -> str:
        return f"lx{self.run_id}-{what}"

    # --- commands --------------------------------------------------------------------------

    def lf(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "-m", "lxcframe", "-P", self.lf_path, *args], env=self.env, timeout=timeout)

    def lxc(self, tool: str, name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run([tool, "-n", name, "-P", self.lxc_path, *args], timeout=timeout)

    # --- containers ------------------------------------------------------------------------

    def make_proto(self) -> bool:
        """The busybox rootfs every container of both kinds gets a copy of."""
        name = self.lf_name("proto")
        result = self.lf("create", name, "-t", "busybox")
        self.lxcframe_made.append(name)
        if result.returncode != 0:
            self.failures.add("lxcframe create -t busybox", result)
            return False
        self.proto_rootfs = os.path.join(self.lf_path, name, "rootfs")
        self.lxcframe_relative = self.lf_handles("lxc.cgroup.relative", "1")
        return True

    def lf_handles(self, key: str, value: str) -> bool:
        """Whether lxcframe, with its plugins as they are, handles ``key`` (not unknown, not unhandled)."""
        probe = os.path.join(self.tmp, "probe.conf")
        write_text(probe, f"lxc.rootfs.path = dir:{self.proto_rootfs}\n{key} = {value}\n")
        result = self.lf("config", "validate", "--format", "json", probe)
        try:
            return result.returncode == 0 and not json.loads(result.stdout).get("unhandled")
        except ValueError:
            return False

    def common_config(self, name: str, rootfs: str) -> list[str]:
        return [
            f"lxc.rootfs.path = dir:{rootfs}",
            f"lxc.uts.name = {name}",
            "lxc.mount.auto = proc:mixed sys:ro",
            "lxc.autodev = 1",
            "lxc.pty.max = 1024",
            "lxc.signal.halt = SIGUSR1",
            "lxc.init.cmd = /sbin/init",
            "lxc.execute.cmd = /bin/true",
        ]

    def make_lxcframe(self, what: str) -> str | None:
        """Create lxcframe's container for ``what``; its full name, or None when that failed."""
        name = self.lf_name(what)
        result = self.lf("create", name, "-t", "busybox")
        self.lxcframe_made.append(name)
        if result.returncode != 0:
            self.failures.add("lxcframe create", result)
            return None
        # The template's config mounts a cgroup tree and drops capabilities; LXC's below does neither,
        # so both runtimes get the same settings.
        rootfs = os.path.join(self.lf_path, name, "rootfs")
        lines = ["# lxcframe side of the bench", *self.common_config(name, rootfs)]
        if self.lxcframe_relative:
            lines.append("lxc.cgroup.relative = 1")
        write_text(os.path.join(self.lf_path, name, "config"), "\n".join(lines) + "\n")
        return name

    def make_lxc(self, what: str) -> str | None:
        """Create LXC's container for ``what``; its full name."""
        name = self.lxc_name(what)
        directory = os.path.join(self.lxc_path, name)
        os.makedirs(directory, mode=0o750)
        self.lxc_made.append(name)
        rootfs = os.path.join(directory, "rootfs")
        shutil.copytree(self.proto_rootfs, rootfs, symlinks=True)
        lines = [
            "# LXC side of the bench",
            *self.common_config(name, rootfs),
            "lxc.net.0.type = empty",
            # Under this process's own cgroup, not LXC's default place.
            "lxc.cgroup.relative = 1",
            "lxc.apparmor.profile = unconfined",
        ]
        write_text(os.path.join(directory, "config"), "\n".join(lines) + "\n")
        return name

    # --- steps of one side -----------------------------------------------------------------

    def lf_execute(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.lf("execute", name, "--", "/bin/true")

    def lxc_execute(self, name: str) -> subprocess.CompletedProcess[str]:
        return self.lxc("lxc-execute", name, "--", "/bin/true")

    def lf_start(self, name: str) -> list[Step]:
        return [lambda: self.lf("start", name)]

    def lxc_start(self, name: str) -> list[Step]:
        return [lambda: self.lxc("lxc-start", name),
                lambda: self.lxc("lxc-wait", name, "-s", "RUNNING", "-t", "30")]

    def lf_stop(self, name: str) -> list[Step]:
        return [lambda: self.lf("stop", "-k", name)]

    def lxc_stop(self, name: str) -> list[Step]:
        return [lambda: self.lxc("lxc-stop", name, "-k"),
                lambda: self.lxc("lxc-wait", name, "-s", "STOPPED", "-t", "30")]

    # --- host processes per container ------------------------------------------------------

    def lf_host_pids(self, name: str) -> list[int]:
        result = self.lf("info", name, "--format", "json")
        if result.returncode != 0:
            self.failures.add("lxcframe info", result)
            return []
        info = json.loads(result.stdout)
        monitor = info.get("monitor_pid")
        if not monitor:
            self.failures.add("lxcframe info: monitor_pid", result, f"no monitor_pid for {name}")
            return []
        return host_side(int(monitor))

    def lxc_host_pids(self, name: str) -> list[int]:
        result = self.lxc("lxc-info", name, "-p", "-H")
        if result.returncode != 0 or not result.stdout.strip().isdigit():
            self.failures.add("lxc-info -p", result)
            return []
        monitor = parent_of(int(result.stdout.strip()))
        if monitor is None or not cmdline(monitor).startswith("[lxc monitor]"):
            self.failures.add("finding [lxc monitor]", result, f"parent of init of {name} is {monitor}: "
                              f"{cmdline(monitor) if monitor else '?'}")
            return []
        return host_side(monitor)

    # --- cleanup ---------------------------------------------------------------------------

    def cleanup(self) -> list[str]:
        """Stop and destroy every container made; returns what could not be cleaned up."""
        problems: list[str] = []
        for name in reversed(self.lxc_made):
            if not os.path.exists(os.path.join(self.lxc_path, name)):
                continue
            state = self.lxc("lxc-info", name, "-s", "-H", timeout=30)
            if state.stdout.strip() not in ("", "STOPPED"):
                stop = self.lxc("lxc-stop", name, "-k", timeout=60)
                if stop.returncode != 0:
                    self.failures.add("cleanup: lxc-stop -k", stop)
            destroy = self.lxc("lxc-destroy", name, "-f", timeout=60)
            if destroy.returncode != 0:
                self.failures.add("cleanup: lxc-destroy", destroy)
                problems.append(f"LXC container {name}: {destroy.stderr.strip()}")
        for name in reversed(self.lxcframe_made):
            if not os.path.exists(os.path.join(self.lf_path, name)):
                continue
            destroy = self.lf("destroy", "-f", name, timeout=120)
            if destroy.returncode != 0:
                self.failures.add("cleanup: lxcframe destroy -f", destroy)
                problems.append(f"lxcframe container {name}: {destroy.stderr.strip()}")
        return problems


def write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


# --- /proc ---------------------------------------------------------------------------------------


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].decode().split()


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = parent_of(int(entry))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry))
    return children


def host_side(monitor: int) -> list[int]:
    """``monitor`` and those of its descendants still in the host's pid namespace (not the container)."""
    own_ns = os.readlink("/proc/self/ns/pid")
    children = _children()
    found, todo = [], [monitor]
    while todo:
        pid = todo.pop()
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") != own_ns:
                continue  # the container's init and everything under it
        except OSError:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kb(pid: int) -> dict[str, int]:
    """Pss, Rss and private (USS) kB of one process, from /proc/PID/smaps_rollup."""
    values = {"Pss": 0, "Rss": 0, "Private_Clean": 0, "Private_Dirty": 0}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0])
    return {"pss": values["Pss"], "rss": values["Rss"], "uss": values["Private_Clean"] + values["Private_Dirty"]}


# --- cleanup and leak checks ---------------------------------------------------------------------


@contextlib.contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def leftovers(tmp: str) -> list[str]:
    """Processes and mounts of this run still there (anything naming the temporary directory)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and tmp in cmdline(int(entry)):
            found.append(f"process {entry}: {cmdline(int(entry))}")
    with open("/proc/self/mountinfo") as handle:
        found += [f"mount {fields[4]}" for fields in (line.split() for line in handle) if tmp in fields[4]]
    return found


def _cgroup_dirs() -> list[str]:
    """Where either runtime may put a container's cgroups: below this process's cgroups (relative),
    below init's (the default for root) and at the top of every hierarchy."""
    bases = {"/"}
    for pid in ("self", "1"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/cgroup") as handle:
            bases.update(line.rstrip("\n").split(":", 2)[2] for line in handle)
    with open("/proc/self/mountinfo") as handle:
        fields = [line.split() for line in handle]
    mounts = [f[4] for f in fields if f[f.index("-") + 1] in ("cgroup", "cgroup2")]
    return sorted({mount + base.rstrip("/") for mount in mounts for base in bases})


def lxc_cgroups(match: Callable[[str], bool]) -> list[str]:
    """Cgroups in the places of :func:`_cgroup_dirs` whose name ``match`` accepts."""
    found: set[str] = set()
    for directory in _cgroup_dirs():
        with contextlib.suppress(OSError):
            found.update(os.path.join(directory, e) for e in os.listdir(directory) if match(e))
    return sorted(found)


def container_cgroups(names: list[str]) -> list[str]:
    """Cgroups named after these containers (``lxc.payload.NAME``, ``lxc.monitor.NAME``, ``-N`` suffixed)."""
    alternatives = "|".join(map(re.escape, names))
    pattern = re.compile(rf"lxc\.(?:payload|monitor)\.(?:{alternatives})(?:-\d+)?\Z")
    return lxc_cgroups(lambda entry: bool(pattern.match(entry))) if names else []


def remove_cgroups(paths: list[str]) -> list[str]:
    """rmdir each (deepest first); only empty cgroups can go. Returns what could not be removed."""
    failed = []
    for path in sorted(paths, key=len, reverse=True):
        try:
            os.rmdir(path)
        except FileNotFoundError:
            continue
        except OSError as err:
            failed.append(f"cgroup {path}: {err.strerror}")
    return failed


def pivot_cgroups() -> set[str]:
    # LXC's monitor moves itself to "lxc.pivot" to remove its container's cgroups, and leaves it.
    return set(lxc_cgroups(lambda entry: entry == "lxc.pivot"))


def remove_new_pivots(before: set[str]) -> list[str]:
    """Remove the empty ``lxc.pivot`` cgroups that this run made LXC create; returns failures."""
    return remove_cgroups(sorted(pivot_cgroups() - before))


def preflight() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("needs root")
    for tool in LXC_TOOLS:
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found (install Debian's lxc)")
    return problems


def end_report(leaked: list[str], problems: list[str], left: list[str], tmp: str, failures: Any,
               interrupted: bool) -> int:
    """Say what was left behind or failed; the bench's exit status (130 when interrupted)."""
    for path in leaked:
        print(f"!! left behind after its container was destroyed (removed by the bench): {path}", file=sys.stderr)
    for problem in problems + left:
        print(f"!! not cleaned up: {problem}", file=sys.stderr)
    if left:
        print(f"!! {tmp} kept because of the above", file=sys.stderr)
    if failures.counts:
        print("\nfailed steps: " + ", ".join(f"{k} (x{v})" for k, v in failures.counts.items()), file=sys.stderr)
    if interrupted:
        return 130
    return 1 if failures.counts or problems or left or leaked else 0
