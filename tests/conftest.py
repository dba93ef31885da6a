"""Shared fixtures: a private lxcpath and run directory per test, and a check that the host stays clean."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lxcframe.container import Container
from lxcframe.context import StartPlan
from lxcframe.plugin_manager import TRACE_ENV, Plugins

from .shards import ShardWorld, parse_shard, select


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--shard", metavar="I/N", default=None,
                     help="run every N-th test not marked serial, from the I-th, in namespaces and a cgroup "
                          "of its own (tests/shards.py; scripts/test.sh runs the shards side by side)")


def pytest_configure(config: pytest.Config) -> None:
    value = config.getoption("shard")
    if value is None:
        return
    index, _ = parse_shard(value)
    world = ShardWorld(index, _own_cgroup_dirs())
    world.enter()
    config.stash[_SHARD_WORLD] = world


def pytest_unconfigure(config: pytest.Config) -> None:
    world = config.stash.get(_SHARD_WORLD, None)
    if world is not None:
        world.leave()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    value = config.getoption("shard")
    if value is None:
        return
    kept, dropped = select(items, *parse_shard(value))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


_SHARD_WORLD = pytest.StashKey[ShardWorld]()


def _mount_lines() -> set[str]:
    with open("/proc/self/mountinfo") as handle:
        return {" ".join(line.split()[3:5]) for line in handle}


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children of children included), from the ``children`` files."""
    if not _HAS_CHILDREN_FILES:
        return _descendants_by_scan(pid)
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except FileNotFoundError:
            continue  # gone meanwhile
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as handle:
                    children = [int(word) for word in handle.read().split()]
            except FileNotFoundError:
                continue
            for child in children:
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


#: Kernels built without CONFIG_PROC_CHILDREN have no such files: then every process is read.
_HAS_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _descendants_by_scan(pid: int) -> set[int]:
    """:func:`_descendants` by reading every process's parent (slower; no ``children`` files needed)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# --- what the host looks like: cgroups, links, netns ids, files (see HostCheck) ------------------------


def _own_cgroup_dirs() -> list[str]:
    """The directory of this process's own cgroup in every hierarchy it is in that is mounted here."""
    with open("/proc/self/cgroup") as handle:
        own = {}
        for line in handle:
            _, labels, path = line.rstrip("\n").split(":", 2)
            own[frozenset(labels.split(",")) - {""}] = path
    dirs = []
    seen = set()
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            before, _, after = line.partition(" - ")
            left, right = before.split(), after.split()
            if len(right) < 3 or right[0] not in ("cgroup", "cgroup2") or left[3] != "/" or left[2] in seen:
                continue
            seen.add(left[2])
            if right[0] == "cgroup2":
                key: frozenset[str] = frozenset()
            else:
                key = frozenset(o for o in right[2].split(",")
                                if o.startswith("name=") or ("=" not in o and o not in _V1_OPTIONS))
            if key in own:
                dirs.append(os.path.join(left[4], own[key].lstrip("/")).rstrip("/"))
    return dirs


_V1_OPTIONS = {"rw", "ro", "none", "all", "noprefix", "clone_children", "cpuset_v2_mode", "xattr", "favordynmods"}


def _cgroup_tree() -> set[str]:
    """Cgroups up to two levels below this process's own, in every hierarchy.

    Two levels: a leak deeper down still leaves a new cgroup at one of them unless it sits below a
    cgroup that existed before (``lxc.cgroup.dir`` naming one), and each level costs a directory read
    per hierarchy.
    """
    found = set()
    for top in _own_cgroup_dirs():
        try:
            children = [e.path for e in os.scandir(top) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        found.update(children)
        for child in children:
            try:
                found.update(e.path for e in os.scandir(child) if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
    return found


def _links() -> set[str]:
    """The network links of this process's network namespace (the host's), as ``index:name``."""
    return {f"{index}:{name}" for index, name in socket.if_nameindex()}


_RTM_NEWNSID, _RTM_GETNSID, _NLMSG_ERROR, _NLMSG_DONE = 88, 90, 2, 3
_NLM_F_REQUEST_DUMP = 0x1 | 0x300
_NETNSA_NSID = 1


def _netns_ids() -> set[int]:
    """The ids this network namespace has given other namespaces (RTM_GETNSID dump, ``ip netns list-id``)."""
    ids = set()
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        sock.send(struct.pack("=IHHII", 20, _RTM_GETNSID, _NLM_F_REQUEST_DUMP, 1, 0) + bytes(4))
        while True:
            data = sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == _NLMSG_DONE:
                    return ids
                if kind == _NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, offset + 16)[0]
                    raise OSError(code, f"RTM_GETNSID dump: {os.strerror(code)}")
                if kind == _RTM_NEWNSID:
                    attr = offset + 16 + 4  # nlmsghdr, rtgenmsg (padded)
                    while attr + 4 <= offset + length:
                        size, attr_type = struct.unpack_from("=HH", data, attr)
                        if attr_type == _NETNSA_NSID:
                            ids.add(struct.unpack_from("=i", data, attr + 4)[0])
                        attr += (size + 3) & ~3
                offset += (length + 3) & ~3


#: Host directories a container, a hook or a broken path resolution could write into, and what is
#: compared in each: "names" (entries added or removed, and each entry's owner and mode) or "mtimes"
#: (also each entry's inode and mtime, which for a directory entry shows a file added or removed one
#: level further down).
_WATCHED = {
    "/": "mtimes",
    "/etc": "mtimes",
    "/root": "mtimes",
    "/var/lib/lxc": "mtimes",
    "/var/lib/lxcframe": "mtimes",  # lxcframe's default lxcpath: tests use their own
    # Names only: other processes write here all the time (tty mtimes in /dev, sockets and pid
    # files in /run, everyone's temporary files in /tmp), so a changed mtime says nothing.
    "/dev": "names",
    "/run": "names",
    "/tmp": "names",
}

#: What the suite legitimately changes in those directories (top-level names), and why.
_IGNORED = {
    # pytest's own base directory for tmp_path (pytest-of-<user>/pytest-N, the last three kept).
    f"/tmp/pytest-of-{os.environ.get('USER') or 'root'}",
    "/tmp/pytest-of-root",
    # lxcframe's fixed, persistent host directories, made by the first start or lock and kept by
    # design: the empty mount point of every rootfs (inside the container's own mount namespace) and
    # /run/lxcframe/locks, the cross-run-directory key locks (LXC keeps the same kind of files).
    "/run/lxcframe.rootfs",
    "/run/lxcframe",
    # util-linux's libmount keeps its utab here, made the first time mount(8) runs (tests use it).
    "/run/mount",
    # LXC's own lock directories, made the first time one of its tools runs (the autostart tests
    # compare with lxc-autostart), by design kept, as lxcframe's /run/lxcframe/locks.
    "/run/lxc",
    # Shell and tool histories, written by an interactive root session, never by a test. The
    # directories of /root (.cache, .config) are compared by name only for the same reason.
    "/root/.bash_history", "/root/.python_history", "/root/.lesshst", "/root/.viminfo", "/root/.wget-hsts",
    # / and /root: the mtimes of the directories that change all the time (their names are still
    # compared, and their own contents where watched).
    "/tmp", "/run", "/dev", "/var", "/root/.cache", "/root/.config", "/root/.local",
}


def _files() -> dict[str, tuple[int, ...] | None]:
    """Each watched entry: ``(uid, gid, mode)``, and ``inode, mtime_ns`` where mtimes are compared."""
    found: dict[str, tuple[int, ...] | None] = {}
    for directory, what in _WATCHED.items():
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue
        found[directory] = None  # the directory itself appearing or going is a change too
        for entry in entries:
            path = entry.path if directory != "/" else "/" + entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            owner = (info.st_uid, info.st_gid, info.st_mode)
            found[path] = owner if what == "names" or path in _IGNORED else (*owner, info.st_ino, info.st_mtime_ns)
    return found


@pytest.fixture
def rundir(tmp_path, monkeypatch) -> str:
    path = str(tmp_path / "run")
    monkeypatch.setenv("LXCFRAME_RUNDIR", path)
    # The supervisor of this run directory leaves soon after its last monitor, so that a test's
    # host check can see it gone.
    monkeypatch.setenv("LXCFRAME_SUPERVISOR_IDLE", "0.2")
    # Every container a test creates stays below this test process's own cgroups (machine rule):
    # the host config's default lines give each new container lxc.cgroup.relative = 1.
    defaults = tmp_path / "default.conf"
    defaults.write_text("lxc.cgroup.relative = 1\n")
    host_config = tmp_path / "lxcframe.toml"
    host_config.write_text(f'default_config = "{defaults}"\n')
    monkeypatch.setenv("LXCFRAME_HOST_CONFIG", str(host_config))
    return path


@pytest.fixture
def lxcpath(tmp_path, rundir) -> str:
    path = tmp_path / "lxc"
    path.mkdir()
    return str(path)


@pytest.fixture
def source_dir(tmp_path):
    """A host directory holding ``hello`` ("injected"), for mounts into containers."""
    path = tmp_path / "src"
    path.mkdir()
    (path / "hello").write_text("injected\n")
    return path


#: How long a difference must stay before it counts as a leftover (see HostCheck).
LEFTOVER_GRACE = 5.0


class HostCheck:
    """What the host looked like before a test; ``assert_clean`` compares after.

    Every test gets one (the autouse ``_host_check`` fixture), taken before its own fixtures run and
    compared after they are torn down; ``host`` hands the same one to tests that check earlier. A
    test fails if it leaves: a mount in this mount namespace; a process below the test process; a
    file in its run directory; a cgroup below the test process's own in any hierarchy (up to two
    levels down, see :func:`_cgroup_tree`); a network link or a netns id in the host's network
    namespace; an entry created, removed or (where mtimes are compared) changed in a host directory
    a container or hook could write into (:data:`_WATCHED`, less :data:`_IGNORED`).

    Others' containers on a shared machine show up here as well (their cgroups sit beside ours at
    the root of the hierarchies, their links in the same netns, their temporary files in /tmp): what
    differs is looked at again for up to :data:`LEFTOVER_GRACE` seconds, and only what stays is
    reported, which also lets our own asynchronous cleanup finish. A leftover that is still not the
    test's own is told by its name, and the test rerun alone.
    """

    def __init__(self, rundir: str | None = None) -> None:
        self.rundir = rundir
        self.failed = False
        self.mounts = _mount_lines()
        self.cgroups = _cgroup_tree()
        self.links = _links()
        self.netns_ids = _netns_ids()
        self.files = _files()

    def _wait_for_supervisor(self, timeout: float = 10.0) -> None:
        if self.rundir is None:
            return
        from .server_fixtures import processes_of_run_directory

        sock = os.path.join(self.rundir, "supervisor.sock")
        deadline = time.monotonic() + timeout
        # A server the test's last command started (the thin client starts one when none listens) may
        # still be importing, with no socket yet: wait for its process too, until it left when idle.
        def server_starting() -> bool:
            return any("lxcframe.supervisor" in line for line in processes_of_run_directory(self.rundir).values())

        while (os.path.exists(sock) or server_starting()) and time.monotonic() < deadline:
            time.sleep(0.02)

    def leftovers(self) -> list[str]:
        """What differs from before, once it stayed so for :data:`LEFTOVER_GRACE` seconds."""
        self._wait_for_supervisor()
        deadline = time.monotonic() + LEFTOVER_GRACE
        while True:
            problems = self._differences()
            if not problems or time.monotonic() >= deadline:
                return problems
            time.sleep(0.05)

    def _differences(self) -> list[str]:
        problems = []
        new_mounts = _mount_lines() - self.mounts
        if new_mounts:
            problems.append(f"mounts left: {sorted(new_mounts)}")
        procs = _descendants(os.getpid())
        # The test process's own helpers (pytest has none) would show up here; containers must not.
        if procs:
            cmdlines = []
            for pid in procs:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        words = handle.read().split(b"\0")
                    cmdlines.append(f"{pid}: {b' '.join(words).decode()}")
                except OSError:
                    continue
            if cmdlines:
                problems.append(f"processes left: {cmdlines}")
        if self.rundir is not None and os.path.isdir(self.rundir):
            files = [os.path.join(d, f) for d, _, fs in os.walk(self.rundir) for f in fs]
            if files:
                problems.append(f"runtime files left: {files}")
        new_cgroups = _cgroup_tree() - self.cgroups
        if new_cgroups:
            problems.append(f"cgroups left: {sorted(new_cgroups)}")
        new_links = _links() - self.links
        if new_links:
            problems.append(f"network links left in the host netns: {sorted(new_links)}")
        new_ids = _netns_ids() - self.netns_ids
        if new_ids:
            problems.append(f"netns ids left in the host netns: {sorted(new_ids)}")
        files = _files()
        created = sorted(set(files) - set(self.files))
        # Everyone's short-lived files come and go in /tmp and /run: only what a test adds there counts.
        removed = sorted(p for p in set(self.files) - set(files) if os.path.dirname(p) not in ("/tmp", "/run"))
        changed = sorted(p for p in set(files) & set(self.files) if files[p] != self.files[p])
        for what, paths in (("created", created), ("removed", removed), ("changed", changed)):
            if paths:
                problems.append(f"host files {what}: {paths}")
        return problems

    def assert_clean(self) -> None:
        problems = self.leftovers()
        self.failed = self.failed or bool(problems)
        assert not problems, "; ".join(problems)


@pytest.fixture(autouse=True)
def _host_check(request) -> Iterator[HostCheck]:
    """Every test: the host as it was before, compared with the host after its teardown."""
    check = HostCheck()
    if "rundir" in request.fixturenames:  # its run directory is checked too, once the snapshot is taken
        check.rundir = request.getfixturevalue("rundir")
    yield check
    if not check.failed:  # a failed check of the test's own (``host.assert_clean``) is reported once
        check.assert_clean()


@pytest.fixture
def host(rundir, _host_check) -> HostCheck:
    _host_check.rundir = rundir
    return _host_check


@pytest.fixture
def per_container_monitor(monkeypatch):
    """Daemon starts keep a Python monitor of their own (``LXCFRAME_ADOPT=0``) rather than being adopted
    by the server: for tests of that monitor (its cgroup, its death, what it inherits)."""
    monkeypatch.setenv("LXCFRAME_ADOPT", "0")


@pytest.fixture
def make_container(lxcpath, host) -> Iterator[Callable[..., Container]]:
    """Create busybox containers; every one is force-destroyed at teardown, then the host is checked."""
    made: list[Container] = []

    def make(name: str = "c1", config: tuple[tuple[str, str], ...] = (), **kwargs: object) -> Container:
        container = Container(name, lxcpath, **kwargs)  # type: ignore[arg-type]
        container.create("busybox", config=config)
        made.append(container)
        return container

    yield make
    for container in made:
        if container.defined:
            try:
                container.destroy(force=True)
            except Exception as err:  # keep destroying the others; the host check reports leftovers
                print(f"teardown of {container.name}: {err}", file=sys.stderr)
    host.assert_clean()


def compile_static(directory: Path, name: str, source: str) -> str:
    """A C helper compiled static, so that it runs in a busybox rootfs; returns its path."""
    (directory / f"{name}.c").write_text(source)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(directory / name), str(directory / f"{name}.c")],
                   check=True, capture_output=True)
    return str(directory / name)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lxcframe", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def run_cli_with_site(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``run_cli`` in this test's environment, finding the plugin distributions installed in ``site`` and this
    working tree; plugins traced only where the arguments ask it (``--trace-plugins``), never by the caller's shell."""
    env = {k: v for k, v in os.environ.items() if k != TRACE_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(Path(__file__).resolve().parent.parent)])
    return run_cli(*args, env=env)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI run by ``run_cli``: a private run directory, a host config that does not
    exist until the test writes it, and no plugin disabled by the caller's shell."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("LXCFRAME_DISABLE_PLUGINS", "LXCFRAME_DISABLE_PLUGIN_AUTOLOAD")}
    environ["LXCFRAME_RUNDIR"] = str(tmp_path / "run")
    environ["LXCFRAME_HOST_CONFIG"] = str(tmp_path / "no-host-config.toml")
    # The command line is a thin client: its server leaves soon after the test's last command.
    environ["LXCFRAME_SUPERVISOR_IDLE"] = "0.2"
    return environ


@contextlib.contextmanager
def another_thread() -> Iterator[None]:
    """The caller has a second thread, so a start or an attach never forks it: a helper is executed."""
    from lxcframe import launcher

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not launcher.single_threaded()
        yield
    finally:
        stop.set()
        thread.join()


@pytest.fixture
def caller_plugins(tmp_path) -> Plugins:
    """The default plugins of a caller, with no host config of the machine's in the way."""
    return Plugins(environ={"LXCFRAME_HOST_CONFIG": str(tmp_path / "none.toml")})


def plan_of(plugins: Plugins, tmp_path: Path, text: str, name: str = "planned") -> StartPlan:
    """The start plan a caller builds for a config of ``text`` (below a rootfs line), as a daemon start."""
    from lxcframe.config.model import load_text
    from lxcframe.planner import build_plan

    config = load_text(f"lxc.rootfs.path = /srv/rootfs\n{text}", plugins.key_registry(), str(tmp_path / "config"))
    return build_plan(plugins, name, "/var/lib/lxcframe", config, None, "daemon")


def daemon_plans_without_keys(monkeypatch: pytest.MonkeyPatch, prefixes: tuple[str, ...]) -> list[StartPlan]:
    """Every daemon start of the test gets its plan with the config keys starting with ``prefixes`` removed
    once the caller built it, so that only the plan's parts can say them; returns the plans that crossed."""
    import attrs

    from lxcframe import launcher

    def keep(key: str) -> bool:
        return not key.startswith(prefixes)

    crossed: list[StartPlan] = []
    real_daemon = launcher.start_daemon

    def start_daemon(plugins: Plugins, plan: StartPlan, *, server: bool | None = None) -> int:
        config = attrs.evolve(plan.config, single={k: v for k, v in plan.config.single.items() if keep(k)},
                              multi={k: v for k, v in plan.config.multi.items() if keep(k)})
        stripped = attrs.evolve(plan, config=config)
        assert not [k for k in (*stripped.config.single, *stripped.config.multi) if k.startswith(prefixes)]
        crossed.append(stripped)
        return real_daemon(plugins, stripped, server=server)

    monkeypatch.setattr(launcher, "start_daemon", start_daemon)
    return crossed
