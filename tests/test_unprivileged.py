"""Containers in a user namespace: idmaps, init uid without uid 0, hooks and ambient caps, devices,
/sys, and the session keyring — each checked from inside and from the host."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from lxcframe import syscalls
from lxcframe.container import Container
from lxcframe.errors import ConfigError, ConfigErrors, StageError
from lxcframe.plugin_manager import Plugins

from .test_lifecycle import capture

pytestmark = pytest.mark.container

ROOT_MAP = (("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536"))


@pytest.fixture
def shared_dir():
    """A directory the container's root can reach and write (hook scripts and their output)."""
    path = tempfile.mkdtemp(prefix="lxcframe-test-", dir="/tmp")
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path)


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _status_ids(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status") as handle:
        fields = dict(line.split(":", 1) for line in handle)
    return int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0])


def test_unprivileged_root_is_the_mapped_host_uid(make_container):
    container = make_container("un1", config=ROOT_MAP)
    init = container.start()
    try:
        assert _status_ids(init) == (100000, 100000)  # seen from the host
        code, out = capture(container, "/bin/sh", "-c", "id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox")
        assert code == 0
        lines = out.split("\n")
        assert lines[0] == "0"
        assert lines[1].split() == ["0", "100000", "65536"]
        assert lines[2] == "0", "the idmapped rootfs shows its files as owned by the container's root"
    finally:
        container.stop(kill=True)
    rootfs = container.load_config().get("lxc.rootfs.path")
    assert os.stat(os.path.join(rootfs, "bin", "busybox")).st_uid == 0, "no file was chowned on the host"


def test_debian_stock_common_and_userns_configs_start_an_unprivileged_container(make_container, lxcpath):
    source = make_container("base")
    rootfs = source.load_config().get("lxc.rootfs.path")
    os.makedirs(os.path.join(lxcpath, "stock"))
    with open(os.path.join(lxcpath, "stock", "config"), "w") as handle:
        handle.write("lxc.include = /usr/share/lxc/config/common.conf\n"
                     "lxc.include = /usr/share/lxc/config/userns.conf\n"
                     f"lxc.rootfs.path = dir:{rootfs}\nlxc.uts.name = stock\n"
                     "lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n"
                     "lxc.signal.halt = SIGUSR1\nlxc.cgroup.relative = 1\n")
    stock = Container("stock", lxcpath)
    stock.start()
    try:
        code, out = capture(stock, "/bin/sh", "-c", "id -u; grep ' /sys ' /proc/mounts; hostname")
        assert code == 0
        assert out.split("\n")[0] == "0"
        assert "sysfs /sys sysfs rw," in out, "userns.conf's sys:rw wins over common.conf's sys:mixed"
        assert "stock" in out
    finally:
        stock.stop(kill=True)
        shutil.rmtree(os.path.join(lxcpath, "stock"))


def _dir_for(container: Container, uid: int) -> str:
    """A directory in the rootfs that on-disk uid ``uid`` owns: through the idmapped rootfs, files
    whose owner is unmapped (root's, here) can be read but never written."""
    path = os.path.join(container.load_config().get("lxc.rootfs.path"), "out")
    os.mkdir(path)
    os.chown(path, uid, uid)
    return "/out"


def test_application_container_without_uid_0(make_container):
    container = make_container("app", config=(
        ("lxc.idmap", "u 1001 1000 1"), ("lxc.idmap", "g 1001 1000 1"),
        ("lxc.init.uid", "1001"), ("lxc.init.gid", "1001"),
    ))
    code, out = capture(container, "/bin/sh", "-c", "id -u; id -g; cat /proc/self/uid_map", execute=True,
                        where=_dir_for(container, 1001))
    assert code == 0
    assert out.split("\n")[:2] == ["1001", "1001"]
    assert out.split("\n")[2].split() == ["1001", "1000", "1"]


@pytest.mark.parametrize("line,reason", [
    ("u 0 100000 65536\nlxc.idmap = u 10 200000 5", "overlap inside the container"),
    ("u 0 100000 10\nlxc.idmap = u 100 100005 10", "overlap on the host"),
    ("u 0 4294967295 2", r"past 2\^32"),
    ("x 0 1 1", r"expected .u\|g"),
])
def test_invalid_idmaps_are_config_errors(lxcpath, line, reason, host):
    container = Container("badmap", lxcpath)
    container.create("busybox")
    try:
        with open(container.config_file_name, "a") as handle:
            handle.write(f"lxc.idmap = {line}\nlxc.idmap = g 0 100000 65536\n")
        with pytest.raises(ConfigError, match=reason):
            container.execute(["/bin/true"])
    finally:
        container.destroy()
    host.assert_clean()


def test_map_the_kernel_cannot_take_is_a_config_error(make_container):
    # Valid line by line, but more ranges than the kernel takes in one map (340).
    ranges = tuple(("lxc.idmap", f"u {i * 2} {100000 + i * 2} 1") for i in range(341))
    container = make_container("refused", config=(*ranges, ("lxc.idmap", "g 0 100000 65536")))
    with pytest.raises(ConfigError, match="341 ranges, the kernel takes at most 340"):
        container.execute(["/bin/true"])
    assert container.state == "STOPPED"


@pytest.mark.parametrize("value", ["u 0 4294967295 1", "u 4294967295 100000 1", "g 4294967290 100000 6"],
                         ids=["host-side", "container-side", "container-side-range"])
def test_a_map_reaching_2_to_the_32_is_refused(lxcpath, host, value):
    container = Container("edge", lxcpath)
    container.create("busybox")
    try:
        with pytest.raises(ConfigError) as refused:
            container.set_config_item("lxc.idmap", value)
        assert type(refused.value) is ConfigError
        assert str(refused.value) == f"lxc.idmap = {value!r}: the range goes past 2^32 - 1"
        # The same line in the file: refused when the config loads, naming file and line.
        with open(container.config_file_name) as handle:
            line = len(handle.read().splitlines()) + 1
        with open(container.config_file_name, "a") as handle:
            handle.write(f"lxc.idmap = {value}\n")
        with pytest.raises(ConfigErrors) as refused:
            container.load_config()
        assert str(refused.value) == \
            f"{container.config_file_name}:{line}: lxc.idmap = {value!r}: the range goes past 2^32 - 1"
    finally:
        container.destroy()
    host.assert_clean()


def test_the_last_ids_below_2_to_the_32_can_be_mapped(lxcpath, host):
    container = Container("edge2", lxcpath)
    container.create("busybox")
    try:
        # 2^32 - 1 itself is no id (it is (uid_t) -1), so the last range ends just before it, on both sides.
        values = ["u 4294967294 100000 1", "u 0 4294967294 1", "g 4294967290 100000 5"]
        for value in values:
            container.set_config_item("lxc.idmap", value)
        entries = container.load_config().get_all("lxc.idmap")
        assert [f"{e.kind} {e.line()}" for e in entries] == values
    finally:
        container.destroy()
    host.assert_clean()


HOOK = """#!/bin/sh
{{
  echo "type=$LXC_HOOK_TYPE args=$* name=$LXC_NAME section=$LXC_HOOK_SECTION version=$LXC_HOOK_VERSION"
  echo "rootfs=$LXC_ROOTFS_MOUNT config=$LXC_CONFIG_FILE cgns=$LXC_CGNS_AWARE pid=$LXC_PID target=$LXC_TARGET"
  echo "netns=$LXC_NET_NS"
  grep -E '^Cap(Amb|Eff)' /proc/self/status
}} >> {out}/hooks.log
"""


@pytest.mark.parametrize("version", ["0", "1"])
def test_hooks_run_in_order_with_the_documented_environment(make_container, shared_dir, version):
    script = os.path.join(shared_dir, "hook.sh")
    with open(script, "w") as handle:
        handle.write(HOOK.format(out=shared_dir))
    os.chmod(script, 0o755)
    kinds = ("pre-start", "pre-mount", "mount", "autodev", "start-host", "stop", "post-stop", "destroy")
    container = make_container("hk", config=(*[(f"lxc.hook.{k}", script) for k in kinds],
                                             ("lxc.hook.version", version)))
    assert container.execute(["/bin/true"]) == 0
    log = _read(os.path.join(shared_dir, "hooks.log"))
    fired = [line.split()[0].removeprefix("type=") for line in log.splitlines() if line.startswith("type=")]
    assert fired == ["pre-start", "pre-mount", "mount", "autodev", "start-host", "stop", "post-stop"]
    first = log.splitlines()[0]
    if version == "0":
        assert "args=hk lxc pre-start" in first
        assert "user:/proc/" in log and "net:/proc/" in log  # stop hooks get the namespaces
    else:
        assert "args= " in first
        assert "section=lxc" in first
    assert f"config={container.config_file_name}" in log and "cgns=1" in log
    assert "pid=" in log.split("type=start-host")[1].split("\n")[1] and "target=stop" in log
    assert "netns=/proc/" in log.split("type=stop")[1]
    container.destroy()
    assert _read(os.path.join(shared_dir, "hooks.log")).count("type=destroy") == 1


def test_failing_hook_fails_and_unwinds_the_start(make_container, shared_dir):
    script = os.path.join(shared_dir, "fail.sh")
    with open(script, "w") as handle:
        handle.write("#!/bin/sh\necho refusing\nexit 3\n")
    os.chmod(script, 0o755)
    container = make_container("hkfail", config=(("lxc.hook.mount", script),))
    with pytest.raises(StageError, match=r"lxc\.hook\.mount .* exited with status 3: refusing") as failed:
        container.start()
    assert (failed.value.stage, failed.value.plugin) == ("pre-pivot", "hooks")
    assert container.state == "STOPPED"


def test_mount_hook_of_a_non_root_child_keeps_ambient_caps(make_container, shared_dir):
    script = os.path.join(shared_dir, "hook.sh")
    with open(script, "w") as handle:
        handle.write(HOOK.format(out=shared_dir))
    os.chmod(script, 0o755)
    container = make_container("amb", config=(
        ("lxc.idmap", "u 1001 1000 1"), ("lxc.idmap", "g 1001 1000 1"),
        ("lxc.init.uid", "1001"), ("lxc.init.gid", "1001"), ("lxc.hook.mount", script),
    ))
    code, out = capture(container, "/bin/sh", "-c", "grep -E '^Cap(Amb|Eff)' /proc/self/status", execute=True,
                        where=_dir_for(container, 1001))
    assert code == 0
    log = _read(os.path.join(shared_dir, "hooks.log"))
    amb = int(log.split("CapAmb:")[1].split()[0], 16)
    eff = int(log.split("CapEff:")[1].split()[0], 16)
    assert amb & (1 << 21) and eff & (1 << 21), "the hook kept CAP_SYS_ADMIN through the ambient set"
    assert int(out.split("CapAmb:")[1].split()[0], 16) == 0, "init starts with no ambient caps"
    assert int(out.split("CapEff:")[1].split()[0], 16) == 0, "init as uid 1001 has no caps"


def test_dev_null_and_a_pty_in_an_unprivileged_container(make_container):
    container = make_container("dev", config=ROOT_MAP)
    code, out = capture(container, "/bin/sh", "-c",
                        "echo x > /dev/null && echo null-ok; exec 3<>/dev/ptmx && ls /dev/pts; "
                        "grep devpts /proc/mounts", execute=True)
    assert code == 0, out
    assert "null-ok" in out
    assert "0" in out.split(), "opening /dev/ptmx created pty 0"
    assert "gid=" in out.split("devpts /dev/pts")[1].split("\n")[0], "gid 5 is mapped: devpts has gid="


def test_devpts_falls_back_without_gid_when_gid_5_is_unmapped(make_container):
    container = make_container("nogid5", config=(
        ("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 5"), ("lxc.idmap", "g 6 100006 65530"),
    ))
    code, out = capture(container, "/bin/sh", "-c",
                        "exec 3<>/dev/ptmx && ls /dev/pts; grep ' /dev/pts ' /proc/mounts", execute=True)
    assert code == 0, out
    devpts = out.split("devpts /dev/pts")[1].split("\n")[0]
    assert "gid=" not in devpts and "ptmxmode=666" in devpts


@pytest.mark.parametrize("mode,writable", [("sys:rw", True), ("sys:ro", False)])
def test_sys_rw_and_ro_in_an_unprivileged_container(make_container, mode, writable):
    container = make_container("sys", config=(*ROOT_MAP, ("lxc.mount.auto", ""), ("lxc.mount.auto", f"proc {mode}")))
    code, out = capture(container, "/bin/sh", "-c", "grep ' /sys ' /proc/mounts", execute=True)
    assert code == 0
    assert ("sysfs /sys sysfs rw," in out) is writable
    assert ("sysfs /sys sysfs ro," in out) is not writable


def test_disabling_plugins_is_visible(make_container, lxcpath):
    host_serial = syscalls.session_keyring_id()
    no_keyring = Plugins(["keyring"])
    container = make_container("nokeys", plugins=no_keyring)
    code, out = capture(container, "/bin/sh", "-c", "cat /proc/keys", execute=True)
    assert code == 0
    assert host_serial in {int(line.split()[0], 16) for line in out.splitlines()}, "the caller's keyring is kept"
    # idmap disabled: the key is reported as belonging to the disabled plugin, nothing is mapped.
    no_idmap = Container("nokeys", lxcpath, plugins=Plugins(["idmap"]))
    no_idmap.set_config_item("lxc.cap.drop", "")  # any write works; idmap keys cannot be set now
    with pytest.raises(ConfigError, match=r"idmap.*disabled"):
        no_idmap.set_config_item("lxc.idmap", "u 0 100000 65536")
    # sysfs disabled: no /sys in the container.
    no_sysfs = Container("nokeys", lxcpath, plugins=Plugins(["sysfs"]))
    code, out = capture(no_sysfs, "/bin/sh", "-c", "grep -c ' /sys ' /proc/mounts || true", execute=True)
    assert out.strip() == "0"
