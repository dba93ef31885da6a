"""The namespaces plugin with real busybox containers: ``lxc.namespace.share.NS`` (by container name and by
pid), ``lxc.namespace.clone``/``keep`` and a time namespace with ``lxc.time.offset.*``, each read from the
kernel (``/proc/PID/ns/*`` inodes, ``/proc/uptime`` inside), and the refusals with file, line and key."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from lxcframe.container import Container
from lxcframe.errors import ConfigError, StageError

from .bound_namespace import bound_namespace, in_namespace
from .test_error_paths import assert_message_of, validate_cli
from .test_lifecycle import capture

pytestmark = pytest.mark.container

EMPTY_NET = (("lxc.net.0.type", "empty"),)
T = "lxcframe.plugins.namespaces_target"


def ns_inode(pid: int | str, name: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{name}").st_ino


def host_uptime() -> float:
    with open("/proc/uptime") as handle:
        return float(handle.read().split()[0])


def line_of(container: Container, key: str) -> str:
    """``FILE:LINE: KEY`` of the last line setting ``key``."""
    path = container.config_file_name
    with open(path, encoding="utf-8") as handle:
        numbers = [n for n, line in enumerate(handle, start=1) if line.split("=")[0].strip() == key]
    return f"{path}:{numbers[-1]}: {key}"


def test_share_net_uts_ipc_with_a_running_container(make_container):
    owner = make_container("nsown", config=EMPTY_NET)
    joiner = make_container("nsjoin", config=(("lxc.namespace.share.net", "nsown"),
                                              ("lxc.namespace.share.uts", "nsown"),
                                              ("lxc.namespace.share.ipc", "nsown")))
    owner_pid = owner.start()
    try:
        # An address of the documentation range, inside the owner's own namespace only.
        assert owner.attach_wait(["ip", "addr", "add", "192.0.2.7/24", "dev", "lo"]) == 0
        joiner_pid = joiner.start()
        try:
            for name in ("net", "uts", "ipc"):
                assert ns_inode(joiner_pid, name) == ns_inode(owner_pid, name), name
            for name in ("mnt", "pid", "cgroup"):
                assert ns_inode(joiner_pid, name) != ns_inode(owner_pid, name), name
            assert ns_inode(joiner_pid, "net") != ns_inode("self", "net")
            # The joined UTS namespace kept the owner's name: the joiner set none of its own.
            code, out = capture(joiner, "hostname")
            assert (code, out.strip()) == (0, "nsown")
            # attach, get_ips and get_interfaces reach the shared namespace through the joiner's init.
            code, out = capture(joiner, "ip", "-4", "addr", "show", "dev", "lo")
            assert code == 0 and "192.0.2.7/24" in out
            assert "192.0.2.7" in joiner.get_ips(interface="lo", family="inet")
            assert joiner.get_interfaces() == owner.get_interfaces() == ("lo",)
        finally:
            joiner.stop(kill=True)
        # The owner's namespace lives on with it.
        assert "192.0.2.7" in owner.get_ips(interface="lo", family="inet")
    finally:
        owner.stop(kill=True)


def test_share_by_pid_joins_that_process_namespaces(make_container):
    owner = make_container("nspown", config=(*EMPTY_NET, ("lxc.time.offset.boot", "10h")))
    owner_pid = owner.start()
    try:
        joiner = make_container("nspjoin", config=(("lxc.namespace.share.net", str(owner_pid)),
                                                   ("lxc.namespace.share.time", str(owner_pid)),
                                                   ("lxc.namespace.share.cgroup", str(owner_pid))))
        joiner_pid = joiner.start()
        try:
            for name in ("net", "time", "cgroup"):
                assert ns_inode(joiner_pid, name) == ns_inode(owner_pid, name), name
            assert ns_inode(joiner_pid, "uts") != ns_inode(owner_pid, "uts")
            code, out = capture(joiner, "cat", "/proc/uptime")
            assert code == 0 and float(out.split()[0]) >= 36000 + host_uptime() - 60
        finally:
            joiner.stop(kill=True)
    finally:
        owner.stop(kill=True)


def test_share_namespaces_kept_by_bind_mounts(make_container, tmp_path):
    # As a pod's network namespace is handed to a runtime: a file of its own, no process in it.
    with bound_namespace(tmp_path / "net", "net") as net, bound_namespace(tmp_path / "uts", "uts") as uts:
        in_namespace(net, "net", "ip", "addr", "add", "192.0.2.9/24", "dev", "lo")
        in_namespace(uts, "uts", "hostname", "bound-uts")
        container = make_container("nsbound", config=(("lxc.namespace.share.net", str(net)),
                                                      ("lxc.namespace.share.uts", str(uts))))
        pid = container.start()
        try:
            assert (ns_inode(pid, "net"), ns_inode(pid, "uts")) == (os.stat(net).st_ino, os.stat(uts).st_ino)
            assert ns_inode(pid, "ipc") != ns_inode("self", "ipc")
            code, out = capture(container, "/bin/sh", "-c", "hostname; ip -4 addr show dev lo")
            assert code == 0 and out.startswith("bound-uts\n") and "192.0.2.9/24" in out
        finally:
            container.stop(kill=True)


def test_a_namespace_file_target_must_be_a_namespace_of_its_kind(make_container, tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("not a namespace\n")
    container = make_container("nsfile", config=(("lxc.namespace.share.net", str(plain)),))
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "sock"))  # neither opened nor taken for a namespace
    with listening, bound_namespace(tmp_path / "uts", "uts") as uts:
        for target, site in ((plain, f"{T}:_open_namespace_file:_refuse:{{}} is not a namespace file"),
                             (uts, f"{T}:_open_namespace_file:_refuse:{{}} is a {{}} namespace, not a {{}} one"),
                             (tmp_path / "sock", f"{T}:_open_namespace_file:_refuse:{{}} is not a namespace file")):
            container.set_config_item("lxc.namespace.share.net", str(target))
            container.save_config()
            with pytest.raises(StageError) as info:
                container.execute(["/bin/true"])
            assert (info.value.stage, info.value.plugin) == ("pre-start", "namespaces")
            assert info.value.message.startswith(f"{line_of(container, 'lxc.namespace.share.net')} = '{target}': ")
            assert_message_of(site, info.value.message)
            assert container.state == "STOPPED"
    # A path that is no file is a container's (/LXCPATH/NAME), as before.
    container.set_config_item("lxc.namespace.share.net", str(tmp_path / "nowhere"))
    container.save_config()
    with pytest.raises(StageError) as info:
        container.execute(["/bin/true"])
    assert_message_of(f"{T}:_target_pidfd:_refuse:container {{}} of {{}} is not running", info.value.message)


def test_clone_without_net_keeps_the_hosts_network_namespace(make_container):
    # Only read here: the container is in the host's network namespace and configures nothing in it.
    container = make_container("nsclone", config=(("lxc.namespace.clone", "mnt pid uts ipc cgroup"),))
    pid = container.start()
    try:
        assert ns_inode(pid, "net") == ns_inode("self", "net")
        for name in ("mnt", "pid", "uts", "ipc", "cgroup"):
            assert ns_inode(pid, name) != ns_inode("self", name), name
        assert ns_inode(pid, "time") == ns_inode("self", "time")
        assert container.info()["netns_id"] is None
        code, out = capture(container, "hostname")
        assert (code, out.strip()) == (0, "nsclone")
    finally:
        container.stop(kill=True)


def test_keep_user_net_makes_every_other_namespace(make_container):
    container = make_container("nskeep", config=(("lxc.namespace.keep", "user net"),))
    pid = container.start()
    try:
        for name in ("user", "net"):
            assert ns_inode(pid, name) == ns_inode("self", name), name
        # keep makes every namespace it does not name, the time namespace too (as LXC).
        for name in ("mnt", "pid", "uts", "ipc", "cgroup", "time"):
            assert ns_inode(pid, name) != ns_inode("self", name), name
        # An attach joins the container's time namespace as well.
        code, out = capture(container, "readlink", "/proc/self/ns/time")
        assert code == 0 and out.strip() == f"time:[{ns_inode(pid, 'time')}]"
    finally:
        container.stop(kill=True)


def test_without_a_uts_namespace_the_host_keeps_its_name(make_container):
    before = socket.gethostname()
    container = make_container("nsnouts", config=(("lxc.namespace.clone", "mnt pid ipc net cgroup"),))
    try:
        pid = container.start()
        assert ns_inode(pid, "uts") == ns_inode("self", "uts")
        code, out = capture(container, "hostname")
        assert (code, out.strip()) == (0, before)
        container.stop(kill=True)
    finally:
        if socket.gethostname() != before:
            # Put the host's name back before failing.
            from lxcframe import syscalls

            syscalls.sethostname(before)
            pytest.fail("the container renamed the host")


def test_time_offsets_show_in_proc_uptime(make_container):
    container = make_container("nstime", config=(("lxc.time.offset.boot", "3600s"),
                                                 ("lxc.time.offset.monotonic", "-1500ms")))
    code, out = capture(container, "/bin/sh", "-c", "cat /proc/uptime; cat /proc/self/timens_offsets",
                        execute=True)
    assert code == 0, out
    uptime = float(out.split()[0])
    assert 3600 + host_uptime() - 60 <= uptime <= 3600 + host_uptime() + 1
    assert "monotonic           -2  500000000" in out.replace("\t", " ") or "monotonic -2 500000000" in " ".join(
        out.split())
    assert "boottime 3600 0" in " ".join(out.split())
    # A daemon start too, and an attach sees the same clocks as init.
    pid = container.start()
    try:
        assert ns_inode(pid, "time") != ns_inode("self", "time")
        code, out = capture(container, "cat", "/proc/uptime")
        assert code == 0 and float(out.split()[0]) >= 3600 + host_uptime() - 60
    finally:
        container.stop(kill=True)


def test_time_offsets_in_an_unprivileged_container(make_container):
    container = make_container("nstimeu", config=(("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536"),
                                                  ("lxc.time.offset.boot", "2h")))
    code, out = capture(container, "cat", "/proc/uptime", execute=True)
    assert code == 0, out
    assert float(out.split()[0]) >= 7200 + host_uptime() - 60


def test_a_share_target_that_is_not_running_stops_the_start(make_container):
    container = make_container("nsghost", config=(("lxc.namespace.share.net", "nsnobody"),))
    with pytest.raises(StageError) as info:
        container.execute(["/bin/true"])
    assert (info.value.stage, info.value.plugin) == ("pre-start", "namespaces")
    message = info.value.message
    assert message.startswith(f"{line_of(container, 'lxc.namespace.share.net')} = 'nsnobody': ")
    assert_message_of(f"{T}:_target_pidfd:_refuse:container {{}} of {{}} is not running", message)
    assert container.state == "STOPPED"
    # A pid that runs nothing, and the container itself.
    for target, site in ((str(2**22 + 1), f"{T}:_target_pidfd:_refuse:no process {{}} is running"),
                         ("nsghost", f"{T}:_target_pidfd:_refuse:a container cannot share a namespace of its own")):
        container.set_config_item("lxc.namespace.share.net", target)
        container.save_config()
        with pytest.raises(StageError) as info:
            container.execute(["/bin/true"])
        assert_message_of(site, info.value.message)
        assert container.state == "STOPPED"
    # A process that ended and was not reaped yet: its pid is taken, its namespaces are gone.
    zombie = os.fork()
    if zombie == 0:
        os._exit(0)
    try:
        while Path(f"/proc/{zombie}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            time.sleep(0.01)
        container.set_config_item("lxc.namespace.share.net", str(zombie))
        container.save_config()
        with pytest.raises(StageError) as info:
            container.execute(["/bin/true"])
        assert_message_of(f"{T}:open_namespace:_refuse:cannot open the {{}} namespace of process {{}}: {{}}",
                          info.value.message)
        assert container.state == "STOPPED"
    finally:
        os.waitpid(zombie, 0)


def test_an_offset_the_kernel_refuses_stops_the_start(make_container):
    container = make_container("nsrange", config=(("lxc.time.offset.monotonic", "-100000h"),))
    with pytest.raises(StageError) as info:
        container.execute(["/bin/true"])
    assert (info.value.stage, info.value.plugin) == ("child-network", "namespaces")
    assert info.value.message.startswith(line_of(container, "lxc.time.offset.monotonic"))
    assert_message_of("lxcframe.plugins.namespaces:_new_time_namespace:OSError:{}: the kernel refused these offsets",
                      info.value.message)
    assert container.state == "STOPPED"


@pytest.mark.parametrize(("lines", "key", "why"), [
    ("lxc.namespace.clone = uts\nlxc.namespace.keep = net\n", "lxc.namespace.keep", "cannot both be set"),
    ("lxc.namespace.clone = pid uts ipc net\n", "lxc.namespace.clone", "a mount namespace of its own"),
    ("lxc.namespace.keep = user pid\n", "lxc.namespace.keep", "a pid namespace of its own"),
    ("lxc.namespace.keep = net\n", "lxc.namespace.keep", "a new user namespace needs lxc.idmap"),
    ("lxc.namespace.keep = user time\nlxc.time.offset.boot = 1h\n", "lxc.namespace.keep", "the time namespace is kept"),
    ("lxc.namespace.share.net = other\nlxc.net.0.type = veth\n", "lxc.net.0.type", "no device can be configured"),
    ("lxc.namespace.keep = user net\nlxc.net.0.type = veth\n", "lxc.net.0.type", "keeps the caller's network"),
    ("lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\nlxc.namespace.share.ipc = other\n",
     "lxc.namespace.share.ipc", "with lxc.idmap is not supported yet"),
], ids=["clone+keep", "no-mnt", "keep-pid", "userns-without-idmap", "kept-time-offsets", "share-net-veth",
        "keep-net-veth", "share-idmap"])
def test_a_config_that_cannot_start_is_refused_at_its_line(lines, key, why, tmp_path: Path, lxcpath, host, capsys):
    config = tmp_path / "config"
    config.write_text(f"lxc.rootfs.path = {tmp_path}\n{lines}")
    numbers = [n for n, line in enumerate(config.read_text().splitlines(), start=1) if line.startswith(key + " ")]
    [line] = validate_cli(config, capsys)
    assert line.startswith(f"{config}:{numbers[-1]}: {key} = ") and why in line, line
    container = Container("nsbad", lxcpath, config_path=str(config))
    with pytest.raises(ConfigError) as info:
        container.execute(["/bin/true"])
    assert str(info.value) == line
    host.assert_clean()


@pytest.mark.parametrize(("key", "why"), [
    ("lxc.namespace.share.pid", "must be pid 1 of a pid namespace of its own"),
    ("lxc.namespace.share.user", "joining another user namespace is not supported yet"),
    ("lxc.namespace.share.mnt", "mounted in a mount namespace of its own"),
])
def test_sharing_pid_user_or_mnt_is_refused_with_the_reason(key, why, tmp_path: Path, lxcpath):
    config = tmp_path / "config"
    config.write_text(f"lxc.rootfs.path = {tmp_path}\n{key} = other\n")
    with pytest.raises(ConfigError) as info:
        Container("nsrefused", lxcpath, config_path=str(config)).load_config()
    assert str(info.value).startswith(f"{config}:2: {key}") and why in str(info.value)
