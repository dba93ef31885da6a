"""Live cgroup items: ``Container.get_cgroup_item``/``set_cgroup_item`` and ``lxcframe cgroup NAME KEY
[VALUE]`` (LXC's ``lxc-cgroup``) on real containers.

What a call reads is compared with the kernel's own file, found by the test from init's
``/proc/PID/cgroup`` and the host's mount table (``tests/hostfacts.py``), not from lxcframe's record;
what it writes is shown by what the kernel then does (a shell inside that cannot fork past
``pids.max``). Every container sets ``lxc.cgroup.relative = 1``: its cgroups are below this test
process's own ones.
"""

from __future__ import annotations

import errno
import os
import subprocess
from functools import partial
from pathlib import Path

import pytest

from lxcframe.container import Container
from lxcframe.errors import ContainerError
from lxcframe.plugins.cgroup import fs

from . import hostfacts
from .cgroup_helpers import SubtreeControlRestored, settled
from .conftest import run_cli
from .test_cgroup2_private import ROOT, fresh, in_pure_cgroup2

pytestmark = pytest.mark.container

FACTS = hostfacts.cgroups()
RELATIVE = ("lxc.cgroup.relative", "1")
NOT_A_NAME = "a key is the name of a file of the container's cgroup: no '/', '..' or control characters"


def limit_line(controller: str, v1_file: str, v2_file: str, value: str) -> tuple[str, str] | None:
    """A config line limiting ``controller`` where this host has it (cgroup2 first, as LXC): on cgroup2 it
    also hands the controller down to the payload, whose files exist only then."""
    if controller in FACTS.unified_controllers:
        return (f"lxc.cgroup2.{v2_file}", value)
    if FACTS.v1_with(controller) is not None:
        return (f"lxc.cgroup.{v1_file}", value)
    return None


PIDS_LIMIT = limit_line("pids", "pids.max", "pids.max", "100")
MEMORY_LIMIT = limit_line("memory", "memory.limit_in_bytes", "memory.max", str(1 << 30))
needs_pids = pytest.mark.skipif(PIDS_LIMIT is None, reason=f"layout {FACTS.mode}: no pids controller")
needs_memory = pytest.mark.skipif(MEMORY_LIMIT is None, reason=f"layout {FACTS.mode}: no memory controller")


def kernel_dir(container: Container, controller: str) -> str:
    """The directory of ``controller``'s cgroup holding init, as the kernel says (init lives in the
    payload cgroup: no ``lxc.cgroup.dir.container.inner`` here)."""
    with open(f"/proc/{container.init_pid}/cgroup", encoding="utf-8") as handle:
        entries = [line.rstrip("\n").split(":", 2) for line in handle]
    if controller in FACTS.unified_controllers or controller == "unified":
        assert FACTS.unified_mount is not None
        mountpoint, path = FACTS.unified_mount, next(p for _id, parts, p in entries if parts == "")
    else:
        mount = FACTS.v1_with(controller)
        assert mount is not None
        mountpoint = mount.mountpoint
        path = next(p for _id, parts, p in entries if controller in parts.split(","))
    return os.path.join(mountpoint, path.lstrip("/"))




def events_max(text: str) -> int:
    """How many forks ``pids.max`` refused (``max N`` of ``pids.events``)."""
    return int(fs.keyed(text)["max"])


def fork_sleeps(container: Container, count: int) -> tuple[int, list[str], str]:
    """A shell inside forks ``count`` background sleeps; its status, their pids and its stderr."""
    rootfs = container.load_config().get("lxc.rootfs.path")
    code = container.attach_wait(["/bin/sh", "-c", "exec 2>/errors; rm -f /started; i=0; "
                                  f"while [ $i -lt {count} ]; do sleep 1000 & echo $! >> /started; i=$((i+1)); done"])
    with open(os.path.join(rootfs, "errors"), encoding="utf-8") as handle:
        errors = handle.read()
    with open(os.path.join(rootfs, "started"), encoding="utf-8") as handle:
        started = handle.read().split()
    return code, started, errors


@pytest.fixture
def unified_base_restored():
    """Undo the controllers a start hands down from this process's own cgroup2 cgroup (a v2 limit)."""
    if FACTS.unified_mount is None or FACTS.own_unified is None:
        yield
        return
    base = SubtreeControlRestored(os.path.join(FACTS.unified_mount, FACTS.own_unified.lstrip("/")))
    yield
    base.restore()


@needs_pids
def test_pids_max_set_live_is_what_the_kernel_enforces(make_container, unified_base_restored):
    assert PIDS_LIMIT is not None
    container = make_container("cgipids", config=(RELATIVE, PIDS_LIMIT))
    container.start()
    try:
        directory = kernel_dir(container, "pids")
        assert container.get_cgroup_item("pids.max") == "100" == fs.read(os.path.join(directory, "pids.max"))
        assert events_max(container.get_cgroup_item("pids.events")) == 0
        # pids.current as the kernel counts it: the container's processes (busybox has no threads).
        current = settled(lambda: (container.get_cgroup_item("pids.current"),
                                   fs.read(os.path.join(directory, "cgroup.procs")).split()))
        baseline = int(current[0])
        assert baseline == len(current[1]) >= 2  # init and its respawned sleep at least

        limit = baseline + 4  # the attach's tini and shell, then two sleeps
        assert container.set_cgroup_item("pids.max", str(limit)) is None
        assert fs.read(os.path.join(directory, "pids.max")) == str(limit)
        code, started, errors = fork_sleeps(container, 20)
        # The shell's fork past the limit failed (busybox sh gives up with status 2) and the kernel counted it.
        assert (code, errors) == (2, "/bin/sh: can't fork: Resource temporarily unavailable\n")
        assert 1 <= len(started) <= 2
        assert events_max(container.get_cgroup_item("pids.events")) >= 1
        # The shell and tini are gone; the sleeps that were started stay, below the limit.
        assert settled(lambda: int(container.get_cgroup_item("pids.current"))) == baseline + len(started) <= limit

        container.set_cgroup_item("pids.max", "max")
        assert fs.read(os.path.join(directory, "pids.max")) == "max"
        code, more, errors = fork_sleeps(container, 20)
        assert (code, len(more), errors) == (0, 20, "")
        assert settled(lambda: int(container.get_cgroup_item("pids.current"))) == baseline + len(started) + 20
    finally:
        container.stop(kill=True)


@needs_memory
def test_memory_use_is_read_from_the_kernels_file(make_container, unified_base_restored):
    assert MEMORY_LIMIT is not None
    on_v2 = "memory" in FACTS.unified_controllers
    key, other = ("memory.current", "memory.usage_in_bytes") if on_v2 else ("memory.usage_in_bytes", "memory.current")
    container = make_container("cgimem", config=(RELATIVE, MEMORY_LIMIT))
    container.start()
    try:
        directory = kernel_dir(container, "memory")
        got, kernels = settled(lambda: (container.get_cgroup_item(key), fs.read(os.path.join(directory, key))))
        assert got == kernels and int(got) > 0
        # 16 MiB written to a file of the rootfs: page cache charged to the container's memory cgroup.
        assert container.attach_wait(["/bin/sh", "-c", "dd if=/dev/zero of=/fill bs=1M count=16 2>/dev/null"]) == 0
        assert int(container.get_cgroup_item(key)) - int(got) >= 12 << 20
        # The other cgroup version's name is no file here: every cgroup of the controller was looked in.
        looked = [kernel_dir(container, "memory")]
        if FACTS.unified_mount is not None and not on_v2:
            looked.append(kernel_dir(container, "unified"))  # cgroup2's files of controllers it does not offer
        with pytest.raises(ContainerError) as refused:
            container.get_cgroup_item(other)
        assert str(refused.value) == (f"cgroup key {other!r}: no such file in the container's cgroup "
                                      f"(looked in {', '.join(looked)})")
    finally:
        container.stop(kill=True)


@needs_pids
def test_keys_that_are_paths_or_no_file_are_refused_and_nothing_is_written(make_container, tmp_path,
                                                                           unified_base_restored):
    assert PIDS_LIMIT is not None
    container = make_container("cgibad", config=(RELATIVE, PIDS_LIMIT))
    container.start()
    # A host process that a write of its pid to a cgroup.procs outside the payload would move.
    mover = subprocess.Popen(["sleep", "600"])
    try:
        directory = kernel_dir(container, "pids")
        where_before = Path(f"/proc/{mover.pid}/cgroup").read_text()
        passwd = os.stat("/etc/passwd")
        passwd_text = Path("/etc/passwd").read_bytes()
        above = sorted(os.listdir(os.path.dirname(directory)))
        for key in ("../cgroup.procs", "/etc/passwd", "pids.max/../../x", "..", "pids\n.max", "pids.max\0"):
            for call in (partial(container.set_cgroup_item, key, str(mover.pid)),
                         partial(container.get_cgroup_item, key)):
                with pytest.raises(ContainerError) as refused:
                    call()
                assert str(refused.value) == f"cgroup key {key!r}: {NOT_A_NAME}"
                assert "\n" not in str(refused.value)
        for key in ("pids", ".max", "pids."):
            with pytest.raises(ContainerError) as refused:
                container.get_cgroup_item(key)
            assert str(refused.value) == (f"cgroup key {key!r}: expected CONTROLLER.FILE (pids.max, memory.max, "
                                          "cpu.shares)")
        assert Path(f"/proc/{mover.pid}/cgroup").read_text() == where_before
        assert (os.stat("/etc/passwd").st_mtime_ns, Path("/etc/passwd").read_bytes()) == (
            passwd.st_mtime_ns, passwd_text)
        assert sorted(os.listdir(os.path.dirname(directory))) == above
        assert fs.read(os.path.join(directory, "pids.max")) == "100"

        # A name that is no regular file of the cgroup: none at all, or a cgroup made below it (as a
        # delegated container can), is refused after every cgroup of the controller was looked in.
        looked = [directory] + ([kernel_dir(container, "unified")]
                                if FACTS.unified_mount is not None and "pids" not in FACTS.unified_controllers else [])
        os.mkdir(os.path.join(directory, "pids.sub"))
        try:
            for key in ("pids.nonesuch", "pids.sub"):
                with pytest.raises(ContainerError) as refused:
                    container.get_cgroup_item(key)
                assert str(refused.value) == (f"cgroup key {key!r}: no such file in the container's cgroup "
                                              f"(looked in {', '.join(looked)})")
        finally:
            os.rmdir(os.path.join(directory, "pids.sub"))

        with pytest.raises(ContainerError) as refused:
            container.set_cgroup_item("pids.current", "5")
        assert str(refused.value) == "cgroup key 'pids.current': the file is read-only"
        if FACTS.unified_mount is not None:
            with pytest.raises(ContainerError) as refused:
                container.get_cgroup_item("cgroup.kill")
            assert str(refused.value) == "cgroup key 'cgroup.kill': the file is write-only"
        for value in ("5\n6", "5\0"):
            with pytest.raises(ContainerError) as refused:
                container.set_cgroup_item("pids.max", value)
            assert str(refused.value) == (f"cgroup key 'pids.max' = {value!r}: a value is one line of text, "
                                          "without control characters")
        with pytest.raises(ContainerError) as refused:
            container.set_cgroup_item("pids.max", "lots")
        assert str(refused.value) == ("cgroup key 'pids.max' = 'lots': the kernel refused it: Invalid argument "
                                      f"({os.path.join(directory, 'pids.max')})")
        assert fs.read(os.path.join(directory, "pids.max")) == "100"
    finally:
        mover.kill()
        mover.wait()
        container.stop(kill=True)


def test_a_container_that_is_not_running_is_refused(make_container, lxcpath):
    container = make_container("cgistop", config=(RELATIVE,))
    for call in (lambda: container.get_cgroup_item("pids.max"), lambda: container.set_cgroup_item("pids.max", "5")):
        with pytest.raises(ContainerError) as refused:
            call()
        assert str(refused.value) == "cgistop: not running"
    with pytest.raises(ContainerError) as refused:
        Container("cginone", lxcpath).get_cgroup_item("pids.max")
    assert str(refused.value) == "cginone: no such container"
    result = run_cli("-P", lxcpath, "cgroup", "cgistop", "pids.max")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "lxcframe: error: cgistop: not running\n")


def test_a_container_started_without_the_cgroup_plugin_has_no_item(make_container):
    # The default config's lxc.cgroup.relative is then applied by no plugin: the host lets it start anyway.
    with open(os.environ["LXCFRAME_HOST_CONFIG"], "a", encoding="utf-8") as handle:
        handle.write('[plugins]\nunhandled_keys = "warn"\n')
    container = make_container("cginocg", disable=["cgroup"])
    container.start()
    try:
        with pytest.raises(ContainerError) as refused:
            container.get_cgroup_item("pids.max")
        assert str(refused.value) == ("cginocg: no enabled plugin holds the container's cgroups (it started "
                                      "without the cgroup plugin, or that plugin is disabled)")
    finally:
        container.stop(kill=True)


@needs_pids
def test_the_cli_verb_prints_sets_and_fails_as_lxc_cgroup(make_container, lxcpath, unified_base_restored):
    assert PIDS_LIMIT is not None
    container = make_container("cgicli", config=(RELATIVE, PIDS_LIMIT))
    container.start()
    try:
        directory = kernel_dir(container, "pids")
        result = run_cli("-P", lxcpath, "cgroup", "cgicli", "pids.max")
        assert (result.returncode, result.stdout, result.stderr) == (0, "100\n", "")
        result = run_cli("-P", lxcpath, "cgroup", "cgicli", "pids.max", "42")
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
        assert fs.read(os.path.join(directory, "pids.max")) == "42"
        result = run_cli("-P", lxcpath, "cgroup", "cgicli", "pids.max", "lots")
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == ("lxcframe: error: cgroup key 'pids.max' = 'lots': the kernel refused it: "
                                 f"Invalid argument ({os.path.join(directory, 'pids.max')})\n")
        result = run_cli("-P", lxcpath, "cgroup", "cgicli", "../cgroup.procs", str(os.getpid()))
        assert (result.returncode, result.stdout, result.stderr) == (
            1, "", f"lxcframe: error: cgroup key '../cgroup.procs': {NOT_A_NAME}\n")
        assert fs.read(os.path.join(directory, "pids.max")) == "42"
    finally:
        container.stop(kill=True)


def test_items_on_a_pure_cgroup2_layout(make_container, lxcpath):
    """On the private cgroup2 mount (tests/test_cgroup2_private.py): a core file set live is what the
    kernel enforces, cpu.stat (a file of a controller this cgroup2 root need not offer) is read from the
    unified cgroup, and a v1 name is no file there."""
    make_container("p2items", config=(RELATIVE,))

    def body() -> dict[str, object]:
        container = fresh("p2items", lxcpath)
        try:
            container.start()
            with open(f"/proc/{container.init_pid}/cgroup", encoding="utf-8") as handle:
                payload = os.path.join(ROOT, next(line.rstrip("\n")[3:] for line in handle
                                                  if line.startswith("0::")).lstrip("/"))
            seen: dict[str, object] = {"payload": payload,
                                       "descendants": container.get_cgroup_item("cgroup.max.descendants")}
            container.set_cgroup_item("cgroup.max.descendants", "1")
            seen["file"] = fs.read(os.path.join(payload, "cgroup.max.descendants"))
            os.mkdir(os.path.join(payload, "first"))
            try:
                os.mkdir(os.path.join(payload, "second"))
                seen["second"] = "made"
                os.rmdir(os.path.join(payload, "second"))
            except OSError as err:
                seen["second"] = err.errno
            finally:
                os.rmdir(os.path.join(payload, "first"))
            seen["cpu.stat"] = settled(lambda: (container.get_cgroup_item("cpu.stat"),
                                                fs.read(os.path.join(payload, "cpu.stat"))))
            try:
                container.get_cgroup_item("memory.usage_in_bytes")
            except ContainerError as err:
                seen["v1 name"] = str(err)
        finally:
            container.stop(kill=True)
        return seen

    seen = in_pure_cgroup2(body)
    assert (seen["descendants"], seen["file"], seen["second"]) == ("max", "1", errno.EAGAIN)
    got, kernels = seen["cpu.stat"]  # type: ignore[misc]
    assert got == kernels and got.startswith("usage_usec ")
    assert seen["v1 name"] == ("cgroup key 'memory.usage_in_bytes': no such file in the container's cgroup "
                               f"(looked in {seen['payload']})")
