"""The cgroup plugin and its v1 and v2 drivers: placement, limits, delegation, freeze, kill, attach,
info, cleanup, automount; switching a driver off by name.

Rules these tests keep on a shared host: every container sets ``lxc.cgroup.relative = 1`` (or a
``lxc.cgroup.dir`` below this process's own cgroup), so nothing ever leaves the cgroup tree the test
started in; they touch only cgroups they or their containers created (and undo a controller a start
handed down from the unified base); escaping to init's cgroup is exercised only by a forked child on
a cgroup2 mount of its own, in a private mount namespace.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import attrs
import pytest

from lxcframe import state as st
from lxcframe import syscalls
from lxcframe.config.model import load_text
from lxcframe.container import Container
from lxcframe.errors import ConfigError, StageError
from lxcframe.hooks import hookimpl
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins.cgroup import fs
from lxcframe.plugins.cgroup.delegate import V1_FILES, delegate, v2_files
from lxcframe.plugins.cgroup.drivers import DRIVERS
from lxcframe.plugins.cgroup.layout import V1, V2, Hierarchy, LayoutCache, current_layout, parse_layout
from lxcframe.plugins.cgroup.naming import base_cgroups, cgroup_in, names_for, parse_proc_cgroup, read_proc_cgroup
from lxcframe.plugins.cgroup.placement import CgroupRecord, Placed, create, from_record, move_self, remove
from lxcframe.plugins.cgroup.runtime import attach_target
from lxcframe.plugins.cgroup.settings import CgroupSettings, read_settings

from . import hostfacts
from .cgroup_helpers import SubtreeControlRestored, counter, grows, settled
from .conftest import run_cli

pytestmark = pytest.mark.container

RELATIVE = ("lxc.cgroup.relative", "1")
PID = os.getpid()
#: This host's cgroup layout, read by the tests themselves (tests/hostfacts.py), not by lxcframe.
FACTS = hostfacts.cgroups()


def needs_v1(*controllers: str) -> pytest.MarkDecorator:
    """For a test of the v1 driver with these controllers: it runs wherever a usable v1 hierarchy has
    them (this VM's hybrid layout; a pure cgroup2 host has none, and its driver is tested by
    tests/test_cgroup2_private.py there as here)."""
    missing = [c for c in controllers if FACTS.v1_with(c) is None]
    return pytest.mark.skipif(bool(missing), reason=f"layout {FACTS.mode}: no v1 hierarchy with {', '.join(missing)}")


def needs_v2(*controllers: str) -> pytest.MarkDecorator:
    missing = [c for c in controllers if c not in FACTS.unified_controllers]
    reason = f"layout {FACTS.mode}: cgroup2 offers no {', '.join(missing)}" if FACTS.unified_mount else \
        f"layout {FACTS.mode}: no cgroup2 mount"
    return pytest.mark.skipif(FACTS.unified_mount is None or bool(missing), reason=reason)


def expected_kinds() -> set[str]:
    """The kinds of hierarchy a container is placed in on this host."""
    return ({V1} if FACTS.v1 else set()) | ({V2} if FACTS.unified_mount else set())


# --- helpers ---------------------------------------------------------------------------------------


def own_bases() -> dict[Hierarchy, str]:
    """This test process's own cgroup in every hierarchy (the base of relative containers)."""
    return base_cgroups(current_layout().hierarchies, True)


def leftovers(*names: str, below: str = "") -> list[str]:
    """``lxc.payload.NAME*``/``lxc.monitor.NAME*`` cgroups under our base (or ``base/below``) anywhere."""
    found = []
    for hierarchy, base in own_bases().items():
        directory = hierarchy.path(os.path.join(base, below))
        if not os.path.isdir(directory):
            continue
        for entry in os.listdir(directory):
            if any(re.fullmatch(rf"lxc\.(payload|monitor)\.{re.escape(n)}(-\d+)?", entry) for n in names):
                found.append(os.path.join(directory, entry))
    return found


def placed_of(container, kind: str | None = None) -> list[Placed]:
    """What the start recorded: every hierarchy, or those of one kind (``V1``, ``V2``)."""
    placed = from_record(container.current_state().record(CgroupRecord))
    return [p for p in placed if kind is None or p.kind == kind]


def capture(container, *cmd: str, execute: bool = False) -> tuple[int, str]:
    rootfs = container.load_config().get("lxc.rootfs.path")
    runner = container.execute if execute else container.attach_wait
    code = runner(["/bin/sh", "-c", 'exec "$0" "$@" > /.capture 2>&1', *cmd])
    path = os.path.join(rootfs, ".capture")
    with open(path) as handle:
        text = handle.read()
    os.unlink(path)
    return code, text


def proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/status") as handle:
        return next(line.split()[1] for line in handle if line.startswith("State:"))


def payload_pids(container) -> set[int]:
    return fs.pids(p.path(p.payload) for p in placed_of(container)[:1])


@pytest.fixture
def unified_base_restored():
    """Undo, after the test, controllers a start enabled in the unified base (a cgroup these tests do
    not own); the start itself leaves them, as LXC does, since other containers may rely on them."""
    unified = current_layout().v2
    if unified is None:  # a legacy host: no unified base to restore
        yield
        return
    base = SubtreeControlRestored(unified.path(own_bases()[unified]))
    yield
    base.restore()


class Spy:
    """Looks at the monitor and init from inside the running start (post-start runs in the monitor)."""

    def __init__(self) -> None:
        self.seen: dict[str, object] = {}

    @hookimpl
    def lxcframe_post_start(self, ctx, pid):
        self.seen = {
            "monitor_is_caller": ctx.monitor_is_caller,
            "monitor_pid": os.getpid(),
            "monitor": read_proc_cgroup("self"),
            "init": read_proc_cgroup(pid),
            "records": [attrs.asdict(p) for p in from_record(ctx.state_records.get(CgroupRecord))],
            "leftovers": leftovers(ctx.name),
        }


class Failer:
    @hookimpl
    def lxcframe_child_pre_mount(self):
        raise RuntimeError("injected failure before the rootfs")


# --- layout, drivers, naming -------------------------------------------------------------------------


def test_concurrent_callers_detect_the_layout_once_and_share_it():
    calls = []

    def counting_parse(text: str):
        calls.append(threading.get_ident())
        time.sleep(0.05)  # make the threads overlap inside the detection
        return parse_layout(text)

    cache = LayoutCache(parse=counting_parse)
    assert not cache.detected  # building the cache detects nothing
    barrier = threading.Barrier(16)
    results: list[object] = [None] * 16

    def work(index: int) -> None:
        barrier.wait()
        name = "v1" if index % 2 else "v2"
        results[index] = (cache.get(), DRIVERS[name](cache.get()))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(calls) == 1
    layouts = {id(r[0]) for r in results}  # type: ignore[index]
    assert len(layouts) == 1
    drivers = {r[1] for r in results}  # type: ignore[index]
    assert len(drivers) == 2  # one per driver name, equal values across threads
    layout = results[0][0]  # type: ignore[index]
    # What this host has, read independently of lxcframe (hybrid here: v1 controllers and name=systemd
    # beside cgroup2 on /sys/fs/cgroup/unified; unified on a default Debian 12 host).
    assert layout.mode == FACTS.mode
    assert {(h.mountpoint, frozenset(h.label.split(","))) for h in layout.v1} == {
        (m.mountpoint, m.parts) for m in FACTS.v1}
    if FACTS.unified_mount is None:
        assert layout.v2 is None
    else:
        assert layout.v2.mountpoint == FACTS.unified_mount
        assert layout.v2.controllers == FACTS.unified_controllers
    if FACTS.mode == "unified":
        assert layout.v2.mountpoint == hostfacts.CGROUP_ROOT or not FACTS.v1_mounts
    elif FACTS.mode == "hybrid":
        assert layout.v1 and layout.v2 is not None
    else:
        assert FACTS.mode == "legacy" and layout.v1 and layout.v2 is None


def test_importing_the_plugins_detects_nothing():
    code = ("import lxcframe.plugins.cgroup, lxcframe.plugins.cgroup.start, lxcframe.plugins.cgroup.automount, "
            "lxcframe.plugins.cgroup.selection; from lxcframe.plugins.cgroup.layout import SHARED_CACHE; "
            "print(SHARED_CACHE.detected)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_layout_parsing_skips_unusable_mounts():
    mountinfo = "\n".join([
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
        "33 31 0:30 / /sys/fs/cgroup/memory ro,relatime - cgroup cgroup rw,memory",  # read-only
        "34 31 0:31 /sub /mnt/pids rw,relatime - cgroup cgroup rw,pids",  # a sub-tree only
        "35 31 0:32 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
        "36 31 0:29 / /elsewhere/cpu rw,relatime - cgroup cgroup rw,cpu,cpuacct",  # same hierarchy again
        "37 31 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate",
    ])
    layout = parse_layout(mountinfo, read_controllers=lambda _mnt: ("hugetlb",))
    assert layout.mode == "hybrid"
    assert [(h.kind, h.mountpoint, h.label) for h in layout.hierarchies] == [
        (V1, "/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct"),
        (V1, "/sys/fs/cgroup/systemd", "name=systemd"),
        (V2, "/sys/fs/cgroup/unified", ""),
    ]
    assert layout.v1_for("cpuacct").mount_data == "cpu,cpuacct"
    assert layout.v1[1].mount_data == "none,name=systemd" and layout.v1[1].matches("name=systemd")
    pure = parse_layout("30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", read_controllers=lambda _m: ("cpu",))
    assert pure.mode == "unified" and pure.v2.mount_dir == "cgroup" and not pure.v1


def test_names_bases_and_suffixes():
    plain = CgroupSettings()
    assert names_for(plain, "c1", 0).payload == "lxc.payload.c1"
    assert (names_for(plain, "c1", 3).payload, names_for(plain, "c1", 3).monitor) == (
        "lxc.payload.c1-3", "lxc.monitor.c1-3")
    in_dir = names_for(CgroupSettings(dir="a/b"), "c1", 1)
    assert (in_dir.payload, in_dir.monitor, in_dir.fixed) == ("a/b/lxc.payload.c1-1", "a/b/lxc.monitor.c1-1", False)
    fixed = names_for(CgroupSettings(dir_container="x/c", dir_monitor="x/m", dir_inner="ns"), "c1", 5)
    assert (fixed.payload, fixed.monitor, fixed.inner, fixed.fixed) == ("x/c", "x/m", "ns", True)
    cpu = Hierarchy(V1, "/sys/fs/cgroup/cpu", ("cpu",))
    init = parse_proc_cgroup("1:cpu:/init.scope\n0::/init.scope\n")
    own = parse_proc_cgroup("1:cpu:/svc/lxc.service\n0::/svc\n")
    assert base_cgroups((cpu,), False, init_entries=init, own_entries=own, euid=0) == {cpu: "/"}
    assert base_cgroups((cpu,), True, init_entries=init, own_entries=own, euid=0) == {cpu: "/svc/lxc.service"}
    assert base_cgroups((cpu,), False, init_entries=init, own_entries=own, euid=1000) == {cpu: "/svc/lxc.service"}


KEYS_TEXT = ("lxc.cgroup.relative = 1\nlxc.cgroup.dir = some/where\nlxc.cgroup.pids.max = 9\n"
             "lxc.cgroup2.cgroup.max.depth = 2\n")


@pytest.mark.parametrize("disabled", [(), ("cgroup.v1",), ("cgroup.v2",), ("cgroup.v1", "cgroup.v2")])
def test_every_cgroup_key_is_the_cgroup_plugins_whichever_drivers_run(disabled):
    config = load_text(KEYS_TEXT, Plugins(disable=disabled).key_registry())
    assert {key: config.located(key).plugin for key in config.keys_under("lxc.")} == {
        "lxc.cgroup.relative": "cgroup", "lxc.cgroup.dir": "cgroup", "lxc.cgroup.pids.max": "cgroup",
        "lxc.cgroup2.cgroup.max.depth": "cgroup"}
    assert config.unhandled == ()
    assert read_settings(config) == CgroupSettings(relative=True, dir="some/where")
    with pytest.raises(ConfigError, match=r"lxc\.cgroup\.dir = '\.\./up': the path may not walk upwards"):
        load_text("lxc.cgroup.dir = ../up\n", Plugins(disable=disabled).key_registry())


def test_without_the_cgroup_plugin_its_keys_are_reported_as_its_own():
    config = load_text(KEYS_TEXT, Plugins(disable=["cgroup"]).key_registry(), "c.conf")
    assert [(u.key, u.line, u.plugin, u.why) for u in config.unhandled] == [
        ("lxc.cgroup.relative", 1, "cgroup", "is disabled on this host"),
        ("lxc.cgroup.dir", 2, "cgroup", "is disabled on this host"),
        ("lxc.cgroup.pids.max", 3, "cgroup", "is disabled on this host"),
        ("lxc.cgroup2.cgroup.max.depth", 4, "cgroup", "is disabled on this host"),
    ]


def test_escape_to_init_cgroup_on_a_private_cgroup2_mount(tmp_path):
    """root without lxc.cgroup.relative creates below init's cgroup, with it below its own.

    Run in a forked child with its own mount namespace and cgroup2 mount: the child (not this test
    process) moves into a cgroup of its own below the unified root, as a confined caller would be.
    """
    mnt = str(tmp_path / "unified")
    os.mkdir(mnt)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 1
        try:
            result = _escape_in_private_namespace(mnt)
            os.write(write_end, json.dumps(result).encode())
            code = 0
        except BaseException as err:
            os.write(write_end, json.dumps({"error": repr(err)}).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        result = json.loads(pipe.read() or "{}")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, result
    name, confined = f"lxcframe-esc-{PID}", f"/lxcframe-test-confined-{PID}"
    assert result["escape"] == ["/", f"/lxc.payload.{name}", f"/lxc.monitor.{name}"]
    assert result["relative"] == [confined, f"{confined}/lxc.payload.{name}", f"{confined}/lxc.monitor.{name}"]
    for relative in ("escape", "relative"):
        moved, back, gone = result[f"moves-{relative}"]
        assert moved.endswith(f"/lxc.monitor.{name}") and back == confined and gone
    assert not os.path.exists(f"/sys/fs/cgroup/unified{confined}")


def _escape_in_private_namespace(mnt: str) -> dict[str, object]:
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    syscalls.mount("cgroup2", mnt, "cgroup2", 0, None)
    hierarchy = Hierarchy(V2, mnt, ())
    name, confined = f"lxcframe-esc-{PID}", f"/lxcframe-test-confined-{PID}"
    result: dict[str, object] = {}
    try:
        # Like a caller confined in a service's cgroup (inside the tree this process started in).
        os.mkdir(hierarchy.path(confined))
        fs.write(hierarchy.path(f"{confined}/cgroup.procs"), str(os.getpid()))
        for key, relative in (("escape", False), ("relative", True)):
            bases = base_cgroups((hierarchy,), relative)
            placed = create((hierarchy,), bases, CgroupSettings(relative=relative), name, with_monitor=True)[0]
            result[key] = [placed.base, placed.payload, placed.monitor]
            placed = attrs.evolve(placed, monitor_origin=cgroup_in(hierarchy, read_proc_cgroup("self")))
            move_self(placed, placed.monitor)
            moved = cgroup_in(hierarchy, read_proc_cgroup("self"))
            remove(placed)
            back = cgroup_in(hierarchy, read_proc_cgroup("self"))
            gone = not os.path.exists(placed.path(placed.payload)) and not os.path.exists(placed.path(placed.monitor))
            result[f"moves-{key}"] = [moved, back, gone]
    finally:
        fs.write(hierarchy.path("/cgroup.procs"), str(os.getpid()))
        fs.rmdir(hierarchy.path(confined))
        syscalls.umount2(mnt, syscalls.MNT_DETACH)
    return result


def test_delegation_hands_the_cgroup_and_its_files_to_the_container_root():
    made = []
    try:
        for hierarchy, base in own_bases().items():
            if hierarchy.kind == V1 and "pids" not in hierarchy.controllers:
                continue
            directory = hierarchy.path(os.path.join(base, f"lxcframe-test-deleg-{PID}"))
            os.mkdir(directory)
            made.append(directory)
            changed = delegate(hierarchy.kind, directory, 100000, 100001)
            info = os.stat(directory)
            assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (100000, 100001, 0o775)
            expected = V1_FILES if hierarchy.kind == V1 else [f for f in v2_files()
                                                              if os.path.exists(os.path.join(directory, f))]
            assert sorted(os.path.basename(p) for p in changed[1:]) == sorted(expected)
            for name in expected:
                info = os.stat(os.path.join(directory, name))
                assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (100000, 100001, 0o664)
            limit = "pids.max" if hierarchy.kind == V1 else "cgroup.max.descendants"
            assert os.stat(os.path.join(directory, limit)).st_uid == 0  # limits stay root's
        assert len(made) == (FACTS.v1_with("pids") is not None) + (FACTS.unified_mount is not None) >= 1
    finally:
        for directory in made:
            os.rmdir(directory)


def test_cgroup2_attach_uses_a_leaf_once_the_cgroup_hands_controllers_down(tmp_path):
    init = tmp_path / "payload"
    init.mkdir()
    placed = Placed(V2, str(tmp_path), "", (), "/", "/payload", "/payload")
    assert attach_target(placed) == str(init / "cgroup.procs")
    (init / "cgroup.subtree_control").write_text("hugetlb\n")
    assert attach_target(placed) == str(init / "lxc" / "cgroup.procs")
    (init / "lxc" / "cgroup.subtree_control").write_text("hugetlb\n")
    assert attach_target(placed) == str(init / "lxc-1" / "cgroup.procs")
    v1 = Placed(V1, str(tmp_path), "pids", ("pids",), "/", "/payload", "/payload")
    assert attach_target(v1) == str(init / "cgroup.procs")


# --- real containers ---------------------------------------------------------------------------------


def test_daemon_start_places_init_and_monitor_in_every_hierarchy(per_container_monitor, make_container):
    container = make_container("cgtplace", config=(RELATIVE,))
    pid = container.start()
    try:
        state = container.current_state()
        init = dict(read_proc_cgroup(pid))
        monitor = dict(read_proc_cgroup(state.monitor_pid))
        bases = own_bases()
        assert len(bases) == len(current_layout().hierarchies) == len(FACTS.v1) + (FACTS.unified_mount is not None)
        suffixes = set()
        for hierarchy, base in bases.items():
            label = next(label for label in init if hierarchy.matches(label))
            payload = re.fullmatch(rf"{re.escape(base.rstrip('/'))}/lxc\.payload\.cgtplace(-\d+)?", init[label])
            assert payload, (hierarchy.display, init[label])
            suffixes.add(payload.group(1))
            assert monitor[label] == init[label].replace("lxc.payload.", "lxc.monitor.")
        assert len(suffixes) == 1  # the same name in every hierarchy
        assert {p.kind for p in placed_of(container)} == expected_kinds()
    finally:
        container.stop(kill=True)
    assert leftovers("cgtplace") == []


def test_foreground_and_execute_callers_are_not_moved(make_container):
    spy = Spy()
    container = make_container("cgtcaller", config=(RELATIVE,), plugins=Plugins(extra=[("spy", spy)]))
    before = read_proc_cgroup("self")
    # The payload lives a moment, so that post-start still sees it.
    for run in (lambda: container.execute(["/bin/sleep", "0.3"]),
                lambda: container.start(["/bin/sleep", "0.3"], foreground=True)):
        assert run() == 0
        seen = spy.seen
        assert seen["monitor_is_caller"] and seen["monitor_pid"] == os.getpid()
        assert seen["monitor"] == before  # the caller stayed where it was
        ours = [path for label, path in seen["init"] if any(h.matches(label) for h in current_layout().hierarchies)]
        assert ours and all(re.search(r"/lxc\.payload\.cgtcaller(-\d+)?$", path) for path in ours), seen
        records = seen["records"]
        assert {h["kind"] for h in records} == expected_kinds()
        assert all(h["monitor"] is None for h in records)
        assert not [p for p in seen["leftovers"] if "lxc.monitor." in p]
        assert read_proc_cgroup("self") == before
    assert leftovers("cgtcaller") == []


@needs_v1("memory", "pids", "devices")
def test_v1_limits_are_written_devices_in_a_second_pass(make_container):
    container = make_container("cgtlim1", config=(
        RELATIVE,
        ("lxc.cgroup.devices.allow", "/dev/null rwm"),
        ("lxc.cgroup.memory.limit_in_bytes", "256M"),
        ("lxc.cgroup.devices.allow", "c 1:5 rwm"),
        ("lxc.cgroup.pids.max", "64"),
        ("lxc.cgroup.devices.deny", "a"),  # written before the allows, though it comes after them
    ))
    container.start()
    try:
        placed = {p.label: p for p in placed_of(container, V1)}
        memory, pids, devices = placed["memory"], placed["pids"], placed["devices"]
        assert fs.read(memory.path(memory.payload, "memory.limit_in_bytes")) == str(256 * 1024 * 1024)
        assert fs.read(pids.path(pids.payload, "pids.max")) == "64"
        assert sorted(fs.read(devices.path(devices.payload, "devices.list")).splitlines()) == [
            "c 1:3 rwm", "c 1:5 rwm"]
        code, out = capture(container, "/bin/sh", "-c", "head -c 3 /dev/zero | wc -c; head -c 1 /dev/urandom")
        assert code != 0 and out.split()[0] == "3" and "not permitted" in out
    finally:
        container.stop(kill=True)
    assert leftovers("cgtlim1") == []


@needs_v1("devices")
@needs_v2()
def test_cgroup2_device_rules_hold_next_to_the_v1_devices_controller(make_container):
    """A config carrying both kinds of device rules (LXC's common.conf) starts on a host where devices
    is a v1 controller: the lxc.cgroup.devices.* rules go to the v1 cgroup, the lxc.cgroup2.devices.*
    ones become a device program on the unified payload cgroup, and a device must pass both."""
    from lxcframe.plugins.cgroup import device_program

    container = make_container("cgtdev2", config=(
        RELATIVE,
        ("lxc.cgroup.devices.deny", "a"),
        ("lxc.cgroup.devices.allow", "c 1:3 rwm"),
        ("lxc.cgroup.devices.allow", "c 1:5 rwm"),
        ("lxc.cgroup2.devices.deny", "a"),
        ("lxc.cgroup2.devices.allow", "c 1:3 rwm"),
        ("lxc.cgroup2.devices.allow", "c 1:9 rwm"),
    ))
    container.start()
    try:
        (devices,) = [p for p in placed_of(container, V1) if "devices" in p.controllers]
        assert sorted(fs.read(devices.path(devices.payload, "devices.list")).splitlines()) == ["c 1:3 rwm", "c 1:5 rwm"]
        (unified,) = placed_of(container, V2)
        assert not [f for f in os.listdir(unified.path(unified.payload)) if f.startswith("devices.")]
        assert len(device_program.attached(unified.path(unified.payload))) == 1
        # /dev/null passes both; /dev/zero only v1's rules, /dev/urandom only the program's.
        code, out = capture(container, "/bin/sh", "-c", "echo x > /dev/null && echo null; head -c 1 /dev/zero; "
                            "head -c 1 /dev/urandom; true")
        assert code == 0 and out.splitlines() == [
            "null", "head: /dev/zero: Operation not permitted", "head: /dev/urandom: Operation not permitted"], out
    finally:
        container.stop(kill=True)
    assert leftovers("cgtdev2") == []


@pytest.mark.serial  # a cgroup2 controller: a shard's own cgroup2 cgroup hands none down
@needs_v2("hugetlb")
def test_v2_limits_hugetlb_and_core_files(make_container, unified_base_restored):
    container = make_container("cgtlim2", config=(
        RELATIVE,
        ("lxc.cgroup2.hugetlb.2MB.max", "4194304"),
        ("lxc.cgroup2.cgroup.max.descendants", "2"),
    ))
    container.start()
    try:
        (unified,) = placed_of(container, V2)
        assert fs.read(unified.path(unified.payload, "hugetlb.2MB.max")) == "4194304"
        assert fs.read(unified.path(unified.payload, "cgroup.max.descendants")) == "2"
        # hugetlb was handed down from the base, so the payload has its files.
        assert "hugetlb" in fs.read(unified.path(unified.base, "cgroup.subtree_control")).split()
    finally:
        container.stop(kill=True)
    assert leftovers("cgtlim2") == []


@pytest.mark.parametrize("disabled", [
    (), pytest.param(("cgroup.v2",), marks=needs_v1("freezer")),
    pytest.param(("cgroup.v1",), marks=needs_v2()),
], ids=["both", "v1-freezer", "v2-freeze"])
def test_freeze_and_unfreeze(make_container, disabled):
    container = make_container("cgtfrz", config=(RELATIVE,), disable=disabled)
    pid = container.start()
    try:
        count = counter(container)
        container.freeze()
        assert container.state == st.FROZEN
        time.sleep(0.05)
        assert not grows(count)
        # Each driver placed the container only where it runs: one switched off has no hierarchy in it.
        assert {p.kind for p in placed_of(container)} == expected_kinds() - {
            {"cgroup.v1": V1, "cgroup.v2": V2}[name] for name in disabled}
        if disabled == ("cgroup.v2",) or FACTS.unified_mount is None:
            (freezer,) = [p for p in placed_of(container, V1) if "freezer" in p.controllers]
            assert fs.read(freezer.path(freezer.payload, "freezer.state")) == "FROZEN"
            assert proc_state(pid) == "D"  # what the v1 freezer shows on this kernel
        else:
            (unified,) = placed_of(container, V2)
            assert fs.keyed(fs.read(unified.path(unified.payload, "cgroup.events")))["frozen"] == "1"
        container.unfreeze()
        assert container.state == st.RUNNING
        assert grows(count)
    finally:
        container.stop(kill=True)
    assert leftovers("cgtfrz") == []


def test_attach_lands_in_the_payload_cgroup(make_container):
    container = make_container("cgtatt", config=(RELATIVE,))
    container.start()
    try:
        code, out = capture(container, "cat", "/proc/self/cgroup")
        assert code == 0
        # Inside the container's cgroup namespace "/" is the payload; anywhere else would show "/..".
        ours = [path for label, path in parse_proc_cgroup(out)
                if any(h.matches(label) for h in current_layout().hierarchies)]
        assert len(ours) == len(current_layout().hierarchies) and set(ours) == {"/"}
        before = payload_pids(container)
        assert container.attach_wait(["/bin/sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1 &"]) == 0
        # The shell forks the sleep and exits; the fork may not have reached its exec yet, and the
        # static init the attach ran (comm "exe") may still be on its way out.
        deadline = time.monotonic() + 5
        while True:
            comms = sorted(fs.read_or_none(f"/proc/{pid}/comm") or "" for pid in payload_pids(container) - before)
            if comms == ["sleep"] or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert comms == ["sleep"]
    finally:
        container.stop(kill=True)
    assert leftovers("cgtatt") == []


@pytest.mark.parametrize("disabled", [(), pytest.param(("cgroup.v2",), marks=needs_v1("freezer"))],
                         ids=["cgroup.kill", "v1-freeze-and-kill"])
def test_stop_kill_leaves_no_process_that_forked_away(make_container, disabled):
    container = make_container("cgtkill", config=(RELATIVE,), disable=disabled)
    container.start()
    try:
        assert container.attach_wait(["/bin/sh", "-c", 'setsid sh -c "sleep 1000 & exec sleep 1000" '
                                      "</dev/null >/dev/null 2>&1 &"]) == 0
        deadline = time.monotonic() + 5
        while True:
            pids = payload_pids(container)
            comms = [fs.read_or_none(f"/proc/{pid}/comm") for pid in pids]
            if comms.count("sleep") >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert comms.count("sleep") >= 2
        starts = {pid: st.process_start_time(pid) for pid in pids}
    finally:
        container.stop(kill=True)
    assert container.state == st.STOPPED
    assert all(st.process_start_time(pid) != start for pid, start in starts.items())  # all gone
    assert leftovers("cgtkill") == []


def test_info_shows_memory_pids_and_cpu(make_container):
    container = make_container("cgtinfo", config=(RELATIVE,))
    container.start()
    try:
        info = container.info()
        for key, controller, v2_file in (("memory", "memory", "memory.current"), ("pids", "pids", "pids.current")):
            if FACTS.v1_with(controller) is None:  # cgroup2 tells where the controller was handed down
                (unified,) = placed_of(container, V2)
                assert (key in info) == os.path.exists(unified.path(unified.payload, v2_file)), (key, info)
        if "pids" in info:
            # The processes of its pid namespace, counted from /proc (busybox's are single-threaded).
            assert settled(lambda: container.info()["pids"]) == settled(lambda: len(_in_pidns(container.init_pid)))
        before = container.info()
        # 16 MiB written to a file of the rootfs: page cache charged to the container's memory cgroup;
        # a counting loop in the shell: CPU time charged to it.
        assert container.attach_wait(["/bin/sh", "-c", "dd if=/dev/zero of=/fill bs=1M count=16 2>/dev/null; "
                                      "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"]) == 0
        after = container.info()
        if "memory" in info:
            assert after["memory"] - before["memory"] >= 12 << 20, (before, after)
        assert after["cpu_ns"] - before["cpu_ns"] >= 50_000_000, (before, after)  # cpuacct, or cgroup2's cpu.stat
    finally:
        container.stop(kill=True)


def _in_pidns(init_pid: int) -> list[int]:
    """The host pids of every process in the pid namespace whose init is ``init_pid``."""
    namespace = os.readlink(f"/proc/{init_pid}/ns/pid")
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == namespace:
                    found.append(int(name))
            except OSError:
                continue  # gone meanwhile
    return found




def test_containers_run_without_the_cgroup_plugin_and_its_keys_are_reported(make_container):
    spy = Spy()
    disabled = ("cgroup",)
    container = make_container("cgtnone", config=(
        RELATIVE, ("lxc.cgroup.memory.limit_in_bytes", "100M"), ("lxc.cgroup2.cgroup.max.descendants", "1"),
    ), plugins=Plugins(disable=disabled, extra=[("spy", spy)]))
    config = container.load_config()
    owners = {u.key: (u.plugin, u.why) for u in config.unhandled}
    assert owners == {key: ("cgroup", "is disabled on this host") for key in (
        "lxc.cgroup.relative", "lxc.cgroup.memory.limit_in_bytes", "lxc.cgroup2.cgroup.max.descendants")}
    # Limits no enabled plugin applies stop the start (as LXC refuses keys it cannot apply)...
    with pytest.raises(ConfigError, match=r"lxc\.cgroup\.memory\.limit_in_bytes.*lxc\.cgroup2\.cgroup\.max"):
        container.execute(["/bin/true"])
    # ...and `-p no:cgroup` on the command line reports them, each at its line, as the cgroup plugin's.
    with open(container.config_file_name) as handle:
        lines = {line.split("=")[0].strip(): number for number, line in enumerate(handle, start=1)}
    refused = run_cli("-p", "no:cgroup", "config", "validate", container.config_file_name)
    assert refused.returncode != 0
    for key in ("lxc.cgroup.memory.limit_in_bytes", "lxc.cgroup2.cgroup.max.descendants"):
        assert f"{container.config_file_name}:{lines[key]}: {key}: handled by plugin 'cgroup', which is disabled " \
               "on this host: the container would run without it" in refused.stderr + refused.stdout, refused
    # ...unless the host opted out: then it runs without them.
    with open(os.environ["LXCFRAME_HOST_CONFIG"], "a") as handle:
        handle.write('[plugins]\nunhandled_keys = "warn"\n')
    container = Container("cgtnone", container.lxcpath, plugins=Plugins(disable=disabled, extra=[("spy", spy)]))
    assert container.execute(["/bin/sleep", "0.3"]) == 0  # alive at post-start: an exited one shows "/"
    assert spy.seen["init"] == read_proc_cgroup("self") and spy.seen["records"] == []
    assert not container.has_api_extension("cgroup2") and not container.has_api_extension("cgroup_relative")
    assert leftovers("cgtnone") == []
    result = run_cli("-p", "no:cgroup", "config", "validate", container.config_file_name)
    assert result.returncode == 0, result.stderr  # the host opted out above
    assert "lxc.cgroup.memory.limit_in_bytes: handled by plugin 'cgroup', which is disabled" in result.stdout
    assert "lxc.cgroup2.cgroup.max.descendants: handled by plugin 'cgroup', which is disabled" in result.stdout


@needs_v1("pids")
@needs_v2()
def test_host_config_drivers_v1_places_the_container_in_v1_hierarchies_only(per_container_monitor, make_container):
    """``[cgroup] drivers = ["v1"]`` on a host with both kinds: init and the monitor are in
    ``lxc.payload``/``lxc.monitor`` of every v1 hierarchy and stay in the caller's unified cgroup, where
    nothing is created; a cgroup2 limit is refused at its line, naming the switch."""
    with open(os.environ["LXCFRAME_HOST_CONFIG"], "a") as handle:
        handle.write('[cgroup]\ndrivers = ["v1"]\n')
    container = make_container("cgtonly1", config=(RELATIVE, ("lxc.cgroup.pids.max", "40")))
    own = dict(read_proc_cgroup("self"))
    unified = current_layout().v2
    unified_base = own_bases()[unified]
    pid = container.start()
    try:
        init = dict(read_proc_cgroup(pid))
        monitor = dict(read_proc_cgroup(container.current_state().monitor_pid))
        for mount in FACTS.v1:
            label = next(label for label in init if set(label.split(",")) == set(mount.parts))
            base = FACTS.own[mount.parts].rstrip("/")
            assert init[label] == f"{base}/lxc.payload.cgtonly1" and monitor[label] == f"{base}/lxc.monitor.cgtonly1"
        # The unified line: where the caller is (the monitor was forked by a supervisor started from here).
        assert init[""] == monitor[""] == own[""] == FACTS.own_unified
        assert not [entry for entry in os.listdir(unified.path(unified_base)) if "cgtonly1" in entry]
        assert {p.kind for p in placed_of(container)} == {V1}
        pids = FACTS.v1_with("pids")
        assert fs.read(os.path.join(pids.mountpoint, FACTS.own[pids.parts].lstrip("/"), "lxc.payload.cgtonly1",
                                    "pids.max")) == "40"
    finally:
        container.stop(kill=True)
    assert leftovers("cgtonly1") == []
    container.set_config_item("lxc.cgroup2.cgroup.max.depth", "2")
    with open(container.config_file_name) as handle:
        line = len(handle.readlines())
    with pytest.raises(ConfigError) as refused:
        container.start()
    assert str(refused.value) == (
        f"{container.config_file_name}:{line}: lxc.cgroup2.cgroup.max.depth: the cgroup plugin's v2 driver is "
        f"switched off ([cgroup] drivers = ['v1'] in {os.environ['LXCFRAME_HOST_CONFIG']}): the container would "
        f"run without it (to start it anyway: unhandled_keys = \"warn\" in [plugins] of "
        f"{os.environ['LXCFRAME_HOST_CONFIG']})")
    assert leftovers("cgtonly1") == [] and container.state == st.STOPPED


@needs_v1()
@needs_v2()
def test_a_library_caller_switches_the_v2_driver_off_by_name(make_container):
    """``Plugins(disable=["cgroup.v2"])`` reaches the monitor (a supervisor's or a helper's) with the
    plugin names: no unified cgroup is made, and a cgroup2 key is refused naming that switch."""
    container = make_container("cgtnov2", config=(RELATIVE,), disable=("cgroup.v2",))
    unified = current_layout().v2
    pid = container.start()
    try:
        assert dict(read_proc_cgroup(pid))[""] == FACTS.own_unified
        assert not [entry for entry in os.listdir(unified.path(own_bases()[unified])) if "cgtnov2" in entry]
        assert {p.kind for p in placed_of(container)} == {V1}
    finally:
        container.stop(kill=True)
    container.set_config_item("lxc.cgroup2.cgroup.max.depth", "2")
    with pytest.raises(ConfigError, match=r"/config:\d+: lxc\.cgroup2\.cgroup\.max\.depth: the cgroup plugin's v2 "
                                          r"driver is switched off \(cgroup\.v2 is disabled\)"):
        container.execute(["/bin/true"])
    assert leftovers("cgtnov2") == []


@pytest.mark.parametrize("mode", ["start", "execute"])
def test_a_start_failing_midway_leaves_no_cgroup(make_container, mode):
    # A limit this host applies: v1 pids where it has them, else a core cgroup2 file.
    limit = ("lxc.cgroup.pids.max", "20") if FACTS.v1_with("pids") else ("lxc.cgroup2.cgroup.max.descendants", "20")
    container = make_container("cgtfail", config=(RELATIVE, limit),
                               plugins=Plugins(extra=[("failer", Failer())]))
    with pytest.raises(StageError, match="injected failure"):
        container.start() if mode == "start" else container.execute(["/bin/true"])
    assert leftovers("cgtfail") == []
    assert container.state == st.STOPPED


def test_a_limit_for_a_missing_controller_is_a_config_error(make_container):
    container = make_container("cgtbad", config=(RELATIVE, ("lxc.cgroup.nosuchctrl.x", "1")))
    with pytest.raises(ConfigError) as info:
        container.start()
    message = str(info.value)
    assert "lxc.cgroup.nosuchctrl.x" in message and "nosuchctrl" in message
    assert re.search(r"/config:\d+: lxc\.cgroup\.nosuchctrl\.x", message)
    if FACTS.v1:
        assert "no cgroup v1 hierarchy has the controller 'nosuchctrl' on this host" in message
    else:  # no v1 hierarchy: the v1 driver has nothing to drive, so no lxc.cgroup.* limit can be applied
        assert f"no writable cgroup v1 hierarchy is mounted (layout {FACTS.mode}), so the cgroup plugin's v1 " \
               "driver cannot apply it" in message
    assert leftovers("cgtbad") == []
    if FACTS.unified_mount is not None:
        # A controller cgroup2 does not offer here (memory is bound to v1 on this hybrid VM).
        missing = next(c for c in ("memory", "pids", "rdma") if c not in FACTS.unified_controllers)
        other = make_container("cgtbad2", config=(RELATIVE, (f"lxc.cgroup2.{missing}.max", "1")))
        wrong = rf"lxc\.cgroup2\.{missing}\.max: the cgroup2 hierarchy offers no controller"
        with pytest.raises(ConfigError, match=wrong):
            other.execute(["/bin/true"])
    assert leftovers("cgtbad", "cgtbad2") == []


def _test_dir() -> str:
    return f"lxcframe-test-{PID}"


@needs_v1("memory")
def test_a_collision_gives_one_suffix_in_every_hierarchy(per_container_monitor, make_container):
    below = _test_dir()
    memory = current_layout().v1_for("memory")
    base = own_bases()[memory]
    taken = memory.path(os.path.join(base, below, "lxc.payload.cgtcoll"))
    os.makedirs(taken)  # only in the memory hierarchy
    try:
        container = make_container("cgtcoll", config=(RELATIVE, ("lxc.cgroup.dir", below)))
        pid = container.start()
        try:
            paths = [path for label, path in read_proc_cgroup(pid)
                     if any(h.matches(label) for h in current_layout().hierarchies)]
            assert paths and all(p.endswith(f"/{below}/lxc.payload.cgtcoll-1") for p in paths)
            monitor = dict(read_proc_cgroup(container.current_state().monitor_pid))
            assert all(p.endswith(f"/{below}/lxc.monitor.cgtcoll-1") for label, p in monitor.items()
                       if any(h.matches(label) for h in current_layout().hierarchies))
        finally:
            container.stop(kill=True)
        assert os.path.isdir(taken)  # not ours to remove
        assert leftovers("cgtcoll", below=below) == [taken]
        # The lxc.cgroup.dir the start made is gone again; the one the test made stays.
        others = [h for h in current_layout().hierarchies if h != memory]
        assert not any(os.path.exists(h.path(os.path.join(own_bases()[h], below))) for h in others)
    finally:
        os.rmdir(taken)
        os.rmdir(os.path.dirname(taken))


@needs_v1("pids")
def test_container_monitor_and_inner_dirs(per_container_monitor, make_container):
    below = _test_dir()
    container = make_container("cgtinner", config=(
        RELATIVE, ("lxc.cgroup.dir.container", f"{below}/c"), ("lxc.cgroup.dir.monitor", f"{below}/m"),
        ("lxc.cgroup.dir.container.inner", "ns"), ("lxc.cgroup.pids.max", "32"),
    ))
    pid = container.start()
    try:
        bases = own_bases()
        for hierarchy, base in bases.items():
            path = cgroup_in(hierarchy, read_proc_cgroup(pid))
            assert path == os.path.join(base, below, "c", "ns")
        pids = current_layout().v1_for("pids")
        outer = pids.path(os.path.join(bases[pids], below, "c"))
        assert fs.read(os.path.join(outer, "pids.max")) == "32"
        assert fs.read(os.path.join(outer, "ns", "pids.max")) == "max"  # the limit is the outer one's
        code, out = capture(container, "cat", "/proc/self/cgroup")
        assert code == 0 and {path for _, path in parse_proc_cgroup(out)} == {"/"}  # rooted at the inner one
        monitor = cgroup_in(pids, read_proc_cgroup(container.current_state().monitor_pid))
        assert monitor == os.path.join(bases[pids], below, "m")
    finally:
        container.stop(kill=True)
    assert not any(os.path.exists(h.path(os.path.join(b, below))) for h, b in own_bases().items())


@needs_v1("devices")
@pytest.mark.parametrize(("value", "message"), [
    ("/dev/null", "'/dev/null': expected '/dev/PATH ACCESS' (e.g. '/dev/null rwm')"),
    ("/dev/no-such-device rwm", "/dev/no-such-device: No such file or directory"),
    ("/etc/hostname rwm", "/etc/hostname is not a character or block device"),
])
def test_device_rules_that_cannot_be_written_name_their_line(make_container, value, message):
    container = make_container("cgtdev", config=(RELATIVE, ("lxc.cgroup.devices.allow", value)))
    with open(container.config_file_name) as handle:
        line = len(handle.readlines())
    with pytest.raises(ConfigError) as refused:
        container.execute(["/bin/true"])
    assert str(refused.value) == f"{container.config_file_name}:{line}: lxc.cgroup.devices.allow: {message}"
    assert leftovers("cgtdev") == []


def test_a_limit_the_kernel_refuses_names_its_line(make_container):
    # Written at pre-start: the kernel is the judge of a limit's value; the start unwinds.
    key = "lxc.cgroup.pids.max" if FACTS.v1_with("pids") else "lxc.cgroup2.cgroup.max.depth"
    container = make_container("cgtval", config=(RELATIVE, (key, "lots")))
    with open(container.config_file_name) as handle:
        line = len(handle.readlines())
    with pytest.raises(StageError) as refused:
        container.start()
    assert re.search(rf"{re.escape(container.config_file_name)}:{line}: {re.escape(key)} = 'lots': writing 'lots' "
                     r"to /sys/fs/cgroup/\S+/lxc\.payload\.cgtval/\S+: Invalid argument", str(refused.value)), refused
    assert refused.value.stage == "pre-start" and refused.value.plugin == "cgroup"
    assert leftovers("cgtval") == [] and container.state == st.STOPPED


def test_fixed_cgroup_names_that_exist_are_refused(make_container):
    """``lxc.cgroup.dir.container``/``.monitor`` are taken as they are: one that exists is an error, never a
    suffix, and the start leaves the existing cgroup alone."""
    below = _test_dir()
    hierarchy = current_layout().hierarchies[0]
    taken = hierarchy.path(os.path.join(own_bases()[hierarchy], below, "c"))
    os.makedirs(taken)
    try:
        container = make_container("cgtfixed", config=(
            RELATIVE, ("lxc.cgroup.dir.container", f"{below}/c"), ("lxc.cgroup.dir.monitor", f"{below}/m")))
        with pytest.raises(StageError) as refused:
            container.start()
        assert f"cgroup {taken} exists already (lxc.cgroup.dir.container/monitor name it exactly)" \
            in str(refused.value)
        parent = os.path.dirname(taken)
        assert [e for e in os.listdir(parent) if os.path.isdir(os.path.join(parent, e))] == ["c"]
        assert container.state == st.STOPPED
    finally:
        os.rmdir(taken)
        os.rmdir(os.path.dirname(taken))
    assert not any(os.path.exists(h.path(os.path.join(b, below))) for h, b in own_bases().items())


def test_dir_keys_that_do_not_fit_together_are_refused(make_container):
    container = make_container("cgtdirs", config=(
        RELATIVE, ("lxc.cgroup.dir", "x"), ("lxc.cgroup.dir.container", "y"),
    ))
    with pytest.raises(ConfigError, match=r"lxc\.cgroup\.dir cannot be combined"):
        container.execute(["/bin/true"])


@needs_v1("pids")
def test_mount_auto_cgroup_force_mounts_the_container_view(make_container):
    container = make_container("cgtmnt", config=(
        RELATIVE, ("lxc.mount.auto", "cgroup:rw:force"), ("lxc.cgroup.pids.max", "77"),
    ))
    listed = " ".join(f"/sys/fs/cgroup/{h.mount_dir}/cgroup.procs" for h in current_layout().hierarchies)
    code, out = capture(container, "/bin/sh", "-c",
                        f"grep ' /sys/fs/cgroup' /proc/mounts; cat /sys/fs/cgroup/pids/pids.max; ls {listed}",
                        execute=True)
    assert code == 0, out
    mounts = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith(("cgroup", "tmpfs"))}
    assert mounts["/sys/fs/cgroup"][2] == "tmpfs" and mounts["/sys/fs/cgroup"][3].startswith("rw,")
    for hierarchy in current_layout().hierarchies:
        entry = mounts[f"/sys/fs/cgroup/{hierarchy.mount_dir}"]
        assert entry[2] == ("cgroup2" if hierarchy.kind == V2 else "cgroup") and entry[3].startswith("rw,")
    assert "\n77\n" in out  # the hierarchy's root inside is the container's own cgroup
    container.set_config_item("lxc.mount.auto", "")
    container.set_config_item("lxc.mount.auto", "proc:mixed sys:ro cgroup:ro:force")
    code, out = capture(container, "/bin/sh", "-c", "grep ' /sys/fs/cgroup' /proc/mounts", execute=True)
    lines = out.splitlines()
    assert code == 0 and len(lines) == len(current_layout().hierarchies) + 1  # the tmpfs too
    assert all(line.split()[3].startswith("ro,") for line in lines)
    # Without :force a container with a cgroup namespace and CAP_SYS_ADMIN mounts its own: nothing here.
    container.set_config_item("lxc.mount.auto", "")
    container.set_config_item("lxc.mount.auto", "proc:mixed sys:ro cgroup:mixed")
    code, out = capture(container, "/bin/sh", "-c", "grep -c ' /sys/fs/cgroup' /proc/mounts", execute=True)
    assert out.strip() == "0"
    assert leftovers("cgtmnt") == []


def test_cleanup_after_a_dead_monitor_removes_the_cgroups(per_container_monitor, make_container):
    container = make_container("cgtdead", config=(RELATIVE,))
    container.start()
    recorded = container.current_state()
    os.kill(recorded.monitor_pid, signal.SIGKILL)
    assert container.wait("STOPPED", 10)
    assert leftovers("cgtdead")  # the monitor could not remove them
    container._clean_stale()
    assert leftovers("cgtdead") == []
    # Idempotent: asked again, everything already gone is no error.
    container.plugins.hook.lxcframe_cleanup(state=recorded, ctx=None)
    container.start()
    container.stop(kill=True)
    assert leftovers("cgtdead") == []


def test_api_extensions_follow_the_layout():
    plugins = Plugins()
    assert plugins.has_api_extension("cgroup2") == (FACTS.unified_mount is not None)
    assert plugins.has_api_extension("cgroup_relative")
    without = Plugins(disable=["cgroup"])
    assert not without.has_api_extension("cgroup2") and not without.has_api_extension("cgroup_relative")


@needs_v1("pids")
def test_unprivileged_container_gets_its_cgroup_delegated(make_container, unified_base_restored):
    container = make_container("cgtdeleg", config=(
        RELATIVE, ("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536"),
        ("lxc.mount.auto", "proc:mixed sys:ro cgroup:rw:force"),
    ))
    container.start()
    try:
        for placed in placed_of(container):
            directory = placed.path(placed.init)
            info = os.stat(directory)
            assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (100000, 100000, 0o775)
            assert os.stat(os.path.join(directory, "cgroup.procs")).st_uid == 100000
        # The container's root can build its own cgroups below its payload.
        code, out = capture(container, "/bin/sh", "-c", "mkdir /sys/fs/cgroup/pids/sub && "
                            "echo $$ > /sys/fs/cgroup/pids/sub/cgroup.procs && cat /proc/self/cgroup")
        assert code == 0, out
        assert "pids:/sub" in out
    finally:
        container.stop(kill=True)
    assert leftovers("cgtdeleg") == []
