"""The cgroup2 driver on a pure cgroup2 layout, with real containers, on any host.

This VM is hybrid, so what a default Debian 12 host does (a cgroup2 tree on /sys/fs/cgroup and no v1
hierarchy: the cgroup plugin's ``v1`` driver with nothing to drive, the tree mounted at the root of the container's
/sys/fs/cgroup, freezing and killing through cgroup.freeze and cgroup.kill) would go untested. Each
test here forks a child that unshares its mount namespace, puts a fresh cgroup2 mount on
/sys/fs/cgroup in place of the host's hierarchies, and runs the containers from there: lxcframe
detects the layout from the mount table of its own mount namespace, so no seam is needed. The
cgroup2 mount shows the kernel's one unified hierarchy, so everything made there is a cgroup below
this process's own one in it (``lxc.cgroup.relative = 1``), which the host check watches.

Controllers bound to v1 hierarchies here (memory, pids, cpu…) cannot be enabled in the unified tree:
the tests use what its root offers (read, not assumed) and the core files every cgroup has.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from lxcframe import state as st
from lxcframe import syscalls
from lxcframe.container import Container
from lxcframe.errors import ConfigError
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins.cgroup import fs
from lxcframe.plugins.cgroup.delegate import v2_files
from lxcframe.plugins.cgroup.layout import V2, current_layout
from lxcframe.plugins.cgroup.naming import parse_proc_cgroup, read_proc_cgroup
from lxcframe.plugins.cgroup.placement import CgroupRecord, Placed, from_record
from lxcframe.plugins.cgroup.probe import probe_drivers

from . import hostfacts
from .cgroup_helpers import SubtreeControlRestored, capture, counter, grows

pytestmark = pytest.mark.container

ROOT = "/sys/fs/cgroup"
RELATIVE = ("lxc.cgroup.relative", "1")
#: Controllers a limit may use here when the unified root offers them (on this VM: hugetlb only).
LIMIT_FILES = {"pids": ("pids.max", "50"), "memory": ("memory.max", "268435456"),
               "hugetlb": ("hugetlb.2MB.max", "4194304")}


def in_pure_cgroup2(body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``body`` in a forked child whose /sys/fs/cgroup is a cgroup2 mount and nothing else.

    The child's mount namespace is private, so nothing it mounts reaches the host. Whatever ``body``
    returns (JSON) comes back; an exception in it fails the test with the child's traceback.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        code = 1
        try:
            syscalls.unshare(syscalls.CLONE_NEWNS)
            syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
            syscalls.umount2(ROOT, syscalls.MNT_DETACH)  # the tmpfs and every v1 hierarchy below it
            syscalls.mount("cgroup2", ROOT, "cgroup2", 0, None)
            payload: dict[str, Any] = {"result": body()}
            code = 0
        except BaseException:
            payload = {"error": traceback.format_exc()}
        try:
            os.write(write_end, json.dumps(payload).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    answer = json.loads(text or "{}")
    assert os.waitstatus_to_exitcode(status) == 0 and "error" not in answer, answer.get("error", answer)
    return answer["result"]


def fresh(name: str, lxcpath: str, **kwargs: Any) -> Container:
    """The container as a process in this mount namespace sees it (plugins decided here, not inherited)."""
    return Container(name, lxcpath, plugins=Plugins(), **kwargs)


def unified_of(container: Container) -> Placed:
    placed = from_record(container.current_state().record(CgroupRecord))
    assert len(placed) == 1 and placed[0].kind == V2 and placed[0].mountpoint == ROOT, placed
    return placed[0]


def own_v2() -> str:
    return next(path for label, path in read_proc_cgroup("self") if label == "")


def base_restored() -> SubtreeControlRestored:
    """The base's cgroup.subtree_control (a cgroup the test did not make), to restore when the test is done."""
    return SubtreeControlRestored(os.path.join(ROOT, own_v2().lstrip("/")))


# --- the layout as lxcframe sees it from inside ------------------------------------------------------


def test_the_private_mount_is_a_pure_cgroup2_layout(rundir):
    def body() -> dict[str, Any]:
        layout = current_layout()
        facts = hostfacts.cgroups()
        plugins = Plugins()
        records = {r.name: (r.state, r.reason) for r in plugins.records()}
        return {"mode": layout.mode, "facts_mode": facts.mode, "kinds": [h.kind for h in layout.hierarchies],
                "mountpoint": layout.v2.mountpoint if layout.v2 else None,
                "controllers": list(layout.v2.controllers) if layout.v2 else None,
                "offered": list(facts.unified_controllers), "plugin": records["cgroup"],
                "drivers": [[p.name, p.supported, p.detail] for p in probe_drivers()],
                "declared_by": plugins.key_registry().lookup("lxc.cgroup.relative").plugin}

    seen = in_pure_cgroup2(body)
    assert seen["mode"] == seen["facts_mode"] == "unified"
    assert seen["kinds"] == [V2] and seen["mountpoint"] == ROOT
    # The same unified hierarchy as the host's mount: the same controllers are free for it.
    host_unified = hostfacts.cgroups().unified_mount
    assert host_unified is not None
    with open(os.path.join(host_unified, "cgroup.controllers")) as handle:
        assert seen["controllers"] == seen["offered"] == handle.read().split()
    assert seen["plugin"] == ["enabled", ""] and seen["declared_by"] == "cgroup"
    (v1, v2) = seen["drivers"]
    assert v1 == ["cgroup.v1", False, "layout unified: no writable cgroup v1 hierarchy is mounted"]
    assert v2[:2] == ["cgroup.v2", True] and v2[2].startswith(f"layout unified; unified at {ROOT} (this process: ")


# --- real containers ---------------------------------------------------------------------------------


@pytest.mark.serial  # cgroup2 controllers: a shard's own cgroup2 cgroup hands none down
def test_start_limits_info_and_kill_on_pure_cgroup2(per_container_monitor, make_container, lxcpath):
    """Placement in the unified tree alone, limits (core files, and a controller where one is free),
    info from cpu.stat, and ``stop -k`` through cgroup.kill taking processes that forked away."""
    offered = hostfacts.cgroups().unified_controllers
    limits = [(f"lxc.cgroup2.{LIMIT_FILES[c][0]}", LIMIT_FILES[c][1]) for c in sorted(LIMIT_FILES) if c in offered]
    make_container("p2kill", config=(RELATIVE, ("lxc.cgroup2.cgroup.max.descendants", "5"),
                                     ("lxc.cgroup2.cgroup.max.depth", "3"), *limits))

    def body() -> dict[str, Any]:
        base = base_restored()
        container = fresh("p2kill", lxcpath)
        try:
            pid = container.start()
            unified = unified_of(container)
            assert unified.payload == os.path.join(own_v2(), "lxc.payload.p2kill")
            monitor = container.current_state().monitor_pid
            # Only the unified line places them: the v1 lines (hierarchies not mounted here) are the caller's.
            init_v2 = [p for label, p in read_proc_cgroup(pid) if label == ""]
            monitor_v2 = [p for label, p in read_proc_cgroup(monitor) if label == ""]
            assert init_v2 == [unified.payload] and monitor_v2 == [unified.monitor]
            assert {label for label, path in read_proc_cgroup(pid) if label} == \
                {label for label, path in read_proc_cgroup("self") if label}
            written = {key: fs.read(unified.path(unified.payload, key.split(".", 2)[2]))
                       for key, _ in (("lxc.cgroup2.cgroup.max.descendants", ""), ("lxc.cgroup2.cgroup.max.depth", ""),
                                      *limits)}
            enabled = fs.read(os.path.join(ROOT, unified.base.lstrip("/"), "cgroup.subtree_control")).split()
            info = container.info()
            assert container.attach_wait(["/bin/sh", "-c", 'setsid sh -c "sleep 1000 & exec sleep 1000" '
                                          "</dev/null >/dev/null 2>&1 &"]) == 0
            deadline = time.monotonic() + 5
            while True:
                pids = fs.pids([unified.path(unified.payload)])
                sleeps = [p for p in pids if fs.read_or_none(f"/proc/{p}/comm") == "sleep"]
                if len(sleeps) >= 2:
                    break
                assert time.monotonic() < deadline, "the forked-away sleeps never showed up"
                time.sleep(0.02)
            starts = {p: st.process_start_time(p) for p in pids}
            assert os.path.exists(unified.path(unified.payload, "cgroup.kill"))
        finally:
            container.stop(kill=True)
            base.restore()
        return {"written": written, "enabled": enabled, "info": info, "state": container.state,
                "alive": [p for p, start in starts.items() if st.process_start_time(p) == start],
                "left": [d for d in (unified.path(unified.payload), unified.path(unified.monitor or "/x"))
                         if os.path.isdir(d)]}

    seen = in_pure_cgroup2(body)
    expected = {"lxc.cgroup2.cgroup.max.descendants": "5", "lxc.cgroup2.cgroup.max.depth": "3", **dict(limits)}
    assert seen["written"] == expected
    assert {key.split(".")[2] for key, _ in limits} <= set(seen["enabled"])  # handed down from the base
    assert seen["info"]["cpu_ns"] > 0  # cpu.stat is a core file: no controller needed
    assert seen["state"] == st.STOPPED and seen["alive"] == [] and seen["left"] == []


def test_freeze_and_unfreeze_on_pure_cgroup2(make_container, lxcpath):
    make_container("p2frz", config=(RELATIVE,))

    def body() -> dict[str, Any]:
        container = fresh("p2frz", lxcpath)
        container.start()
        try:
            count = counter(container)
            unified = unified_of(container)
            container.freeze()
            frozen = {"state": container.state, "events": fs.keyed(fs.read(unified.path(unified.payload,
                                                                                      "cgroup.events")))["frozen"],
                      "freeze": fs.read(unified.path(unified.payload, "cgroup.freeze")), "grows": grows(count)}
            container.unfreeze()
            thawed = {"state": container.state, "events": fs.keyed(fs.read(unified.path(unified.payload,
                                                                                      "cgroup.events")))["frozen"],
                      "freeze": fs.read(unified.path(unified.payload, "cgroup.freeze")), "grows": grows(count)}
        finally:
            container.stop(kill=True)
        return {"frozen": frozen, "thawed": thawed}

    seen = in_pure_cgroup2(body)
    assert seen["frozen"] == {"state": st.FROZEN, "events": "1", "freeze": "1", "grows": False}
    assert seen["thawed"] == {"state": st.RUNNING, "events": "0", "freeze": "0", "grows": True}


def test_unprivileged_container_gets_its_cgroup2_delegated(make_container, lxcpath):
    """The init cgroup and the kernel's delegation files go to the container's root; the tree is
    mounted straight on the container's /sys/fs/cgroup (no tmpfs), where its root builds its own."""
    make_container("p2deleg", config=(
        RELATIVE, ("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536"),
        ("lxc.mount.auto", "proc:mixed sys:ro cgroup:rw:force"),
    ))

    def body() -> dict[str, Any]:
        base = base_restored()
        container = fresh("p2deleg", lxcpath)
        container.start()
        try:
            unified = unified_of(container)
            directory = unified.path(unified.init)
            info = os.stat(directory)
            owners = {}
            for name in sorted(os.listdir(directory)):
                path = os.path.join(directory, name)
                if os.path.isfile(path):
                    owners[name] = [os.stat(path).st_uid, os.stat(path).st_gid, os.stat(path).st_mode & 0o777]
            code, out = capture(container, "grep ' /sys/fs/cgroup' /proc/mounts; mkdir /sys/fs/cgroup/sub && "
                                "echo $$ > /sys/fs/cgroup/sub/cgroup.procs && cat /proc/self/cgroup")
            inner = os.path.isdir(os.path.join(directory, "sub"))
        finally:
            container.stop(kill=True)
            base.restore()
        return {"dir": [info.st_uid, info.st_gid, info.st_mode & 0o777], "owners": owners, "code": code,
                "out": out, "inner": inner, "gone": not os.path.exists(directory)}

    seen = in_pure_cgroup2(body)
    assert seen["dir"] == [100000, 100000, 0o775]
    delegated = [f for f in v2_files() if f in seen["owners"]]
    assert {"cgroup.procs", "cgroup.threads", "cgroup.subtree_control"} <= set(delegated)
    for name, owner in seen["owners"].items():
        # The delegation files are the container root's; every other file (the limits) stays root's.
        assert owner == ([100000, 100000, 0o664] if name in delegated else [0, 0, owner[2]]), (name, owner)
    assert seen["code"] == 0, seen["out"]
    lines = seen["out"].splitlines()
    mounts = [line.split() for line in lines if " /sys/fs/cgroup" in line]
    assert [(m[1], m[2]) for m in mounts] == [("/sys/fs/cgroup", "cgroup2")] and mounts[0][3].startswith("rw,")
    assert parse_proc_cgroup(lines[-1] + "\n") == [("", "/sub")]  # rooted at its own cgroup, in the sub-cgroup
    assert seen["inner"] and seen["gone"]


# --- device rules: a BPF device program, as on a default Debian 12 host -----------------------------------------

COMMON_CONF = "/usr/share/lxc/config/common.conf"


def test_stock_common_conf_device_rules_hold_on_pure_cgroup2(make_container, lxcpath):
    """Debian's common.conf carries both kinds of device rules: here no v1 hierarchy has devices, so its
    lxc.cgroup2.devices rules govern, compiled into a device program on the payload cgroup; its
    lxc.cgroup.devices rules are left out rather than refused. Denied opens fail with EPERM, the
    allowed ones work, mknod is allowed for every device (``c *:* m``, ``b *:* m``); the stop detaches
    and frees the program."""
    from lxcframe.plugins.cgroup import device_program

    make_container("p2dev", config=(RELATIVE, ("lxc.include", COMMON_CONF)))

    def body() -> dict[str, Any]:
        container = fresh("p2dev", lxcpath)
        container.start()
        try:
            unified = unified_of(container)
            directory = unified.path(unified.payload)
            programs = device_program.attached(directory)
            code, out = capture(container, "; ".join([
                "echo x > /dev/null && echo null:open",
                "head -c 1 /dev/zero | wc -c | sed 's/^/zero:read /'",
                "mknod /dev/t-port c 1 4 && echo port:mknod", "head -c 1 /dev/t-port",
                "mknod /dev/t-disk b 8 0 && echo disk:mknod", "head -c 1 /dev/t-disk", "true"]))
        finally:
            container.stop(kill=True)
        return {"programs": programs, "code": code, "out": out, "gone": not os.path.isdir(directory)}

    seen = in_pure_cgroup2(body)
    assert len(seen["programs"]) == 1 and seen["code"] == 0, seen
    assert seen["out"].splitlines() == [
        "null:open", "zero:read 1", "port:mknod", "head: /dev/t-port: Operation not permitted",
        "disk:mknod", "head: /dev/t-disk: Operation not permitted"], seen["out"]
    assert seen["gone"]
    deadline = time.monotonic() + 5
    while True:
        try:
            os.close(syscalls.prog_fd_by_id(seen["programs"][0]))
        except FileNotFoundError:
            break
        assert time.monotonic() < deadline, "the device program is still loaded after the stop"
        time.sleep(0.05)


def test_v1_device_rules_alone_are_still_refused_on_pure_cgroup2(make_container, lxcpath):
    """Only cgroup2 device rules let the v1 ones be left out: alone, they would go unapplied."""
    make_container("p2v1dev", config=(RELATIVE, ("lxc.cgroup.devices.deny", "a")))

    def body() -> dict[str, Any]:
        container = fresh("p2v1dev", lxcpath)
        try:
            container.start()
        except ConfigError as err:
            return {"error": str(err), "state": container.state}
        container.stop(kill=True)
        return {"error": None}

    seen = in_pure_cgroup2(body)
    assert seen["error"] is not None and seen["error"].endswith(
        ": lxc.cgroup.devices.deny: no writable cgroup v1 hierarchy is mounted (layout unified), so the cgroup "
        "plugin's v1 driver cannot apply it"), seen
    assert seen["state"] == st.STOPPED
