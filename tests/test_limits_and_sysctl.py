"""Resource limits, sysctls and /proc files of the container's init: real containers, and config errors."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from lxcframe.config.model import load_config, load_text
from lxcframe.container import Container
from lxcframe.errors import ConfigError, LxcframeError
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins import procfs

from .test_lifecycle import capture

pytestmark = pytest.mark.container


def read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def append_config(container: Container, text: str) -> None:
    with open(container.config_file_name, "a") as handle:
        handle.write(text)


def config_line(container: Container, key: str) -> str:
    """``file:line`` of ``key`` in the container's config, as errors name it."""
    path = container.config_file_name
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.split("=")[0].strip() == key:
                return f"{path}:{number}:"
    raise AssertionError(f"{key} not in {path}")


# --- prlimit -------------------------------------------------------------------------------------------------


def test_prlimit_sets_soft_and_hard_limits_of_init(make_container):
    # Raising a hard limit needs CAP_SYS_RESOURCE, which root may lack: keep the caller's.
    rttime_hard = resource.getrlimit(resource.RLIMIT_RTTIME)[1]
    rttime = "unlimited" if rttime_hard == resource.RLIM_INFINITY else str(rttime_hard)
    container = make_container("lim1", config=(
        ("lxc.prlimit.nofile", "512:1024"),
        ("lxc.prlimit.core", "0"),
        ("lxc.prlimit.nproc", "2000"),
        ("lxc.prlimit.rttime", f"5000000:{rttime}"),
    ))
    rows_wanted = "open files|core file|processes|realtime timeout"
    code, out = capture(container, "/bin/sh", "-c", f"ulimit -n; ulimit -Hn; grep -E '{rows_wanted}' /proc/1/limits",
                        execute=True)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:2] == ["512", "1024"]
    rows = {" ".join(row.split()[:-3]): row.split()[-3:-1] for row in lines[2:]}
    assert rows["Max open files"] == ["512", "1024"]
    assert rows["Max core file size"] == ["0", "0"]  # a single value sets both
    assert rows["Max processes"] == ["2000", "2000"]
    assert rows["Max realtime timeout"] == ["5000000", rttime]


def test_prlimit_the_kernel_refuses_is_a_start_error_naming_the_key(make_container):
    container = make_container("lim2")
    # Above fs.nr_open no process may have it, whatever its capabilities.
    too_many = int(read("/proc/sys/fs/nr_open")) + 1
    append_config(container, f"lxc.prlimit.nofile = {too_many}\n")
    with pytest.raises(LxcframeError) as info:
        container.execute(["/bin/true"])
    text = str(info.value)
    assert "prlimit" in text and "lxc.prlimit.nofile" in text and "refused" in text
    assert config_line(container, "lxc.prlimit.nofile") in text


@pytest.mark.parametrize(("line", "reason"), [
    ("lxc.prlimit.bogus = 10", "unknown resource"),
    ("lxc.prlimit.nofile = lots", "not a number"),
    ("lxc.prlimit.nofile = 10:5", "soft limit is above the hard limit"),
    ("lxc.prlimit.stack = unlimited:1024", "soft limit is above the hard limit"),
    ("lxc.prlimit.cpu = 1:2:3", "not a number"),
])
def test_prlimit_config_errors_name_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "config"
    path.write_text(f"lxc.uts.name = a\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), Plugins(environ={}).key_registry())
    assert f"{path}:2: {line.split(' =')[0]}" in str(info.value)
    assert reason in str(info.value)


# --- sysctl --------------------------------------------------------------------------------------------------


def test_sysctl_is_written_in_the_container_only(make_container):
    host_forward = read("/proc/sys/net/ipv4/ip_forward")
    host_msgmax = read("/proc/sys/kernel/msgmax")
    inside_msgmax = str(int(host_msgmax) - 1)
    wanted_forward = "0" if host_forward == "1" else "1"
    container = make_container("ctl1", config=(
        ("lxc.sysctl.net.ipv4.ip_forward", wanted_forward),
        # proc:mixed makes /proc/sys read-only in the container: the write must still get through.
        ("lxc.sysctl.kernel.msgmax", inside_msgmax),
    ))
    code, out = capture(container, "/bin/sh", "-c",
                        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax", execute=True)
    assert code == 0, out
    assert out.split() == [wanted_forward, inside_msgmax]
    assert read("/proc/sys/net/ipv4/ip_forward") == host_forward
    assert read("/proc/sys/kernel/msgmax") == host_msgmax


def test_sysctl_of_a_shared_namespace_is_refused_before_start(make_container):
    host_forward = read("/proc/sys/net/ipv4/ip_forward")
    container = make_container("ctl2")
    append_config(container, "lxc.net.0.type = none\nlxc.sysctl.net.ipv4.ip_forward = 1\n")
    with pytest.raises(LxcframeError, match="shares the host's network namespace") as info:
        container.execute(["/bin/true"])
    assert config_line(container, "lxc.sysctl.net.ipv4.ip_forward") in str(info.value)
    assert read("/proc/sys/net/ipv4/ip_forward") == host_forward


def test_sysctl_without_a_container_proc_is_a_clear_error(make_container):
    container = make_container("ctl3")
    append_config(container, "lxc.mount.auto =\nlxc.sysctl.net.ipv4.ip_forward = 1\n")
    with pytest.raises(LxcframeError, match=r"no /proc to write sysctls through") as info:
        container.execute(["/bin/true"])
    assert "lxc.sysctl.net.ipv4.ip_forward" in str(info.value)


@pytest.mark.parametrize(("line", "reason"), [
    ("lxc.sysctl.vm.swappiness = 10", "not a namespaced sysctl"),
    ("lxc.sysctl.kernel.panic = 1", "not a namespaced sysctl"),
    ("lxc.sysctl.fs.file-max = 100", "not a namespaced sysctl"),
])
def test_sysctl_of_the_host_is_a_config_error(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "config"
    path.write_text(f"lxc.uts.name = a\n\n{line}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), Plugins(environ={}).key_registry())
    assert f"{path}:3: {line.split(' =')[0]}" in str(info.value)
    assert reason in str(info.value)


def test_sysctl_name_that_is_no_file_is_refused(make_container):
    container = make_container("ctl4")
    append_config(container, "lxc.sysctl.net..ipv4 = 1\n")
    with pytest.raises(ConfigError, match="not a sysctl name") as info:
        container.execute(["/bin/true"])
    assert config_line(container, "lxc.sysctl.net..ipv4") in str(info.value)


# --- procfs --------------------------------------------------------------------------------------------------


def test_proc_file_of_init_is_written_before_the_payload(make_container):
    container = make_container("prc1", config=(("lxc.proc.oom_score_adj", "10"),))
    container.start()
    try:
        code, out = capture(container, "/bin/sh", "-c", "cat /proc/1/oom_score_adj")
        assert code == 0, out
        assert out.strip() == "10"
        assert read(f"/proc/{container.init_pid}/oom_score_adj") == "10"
    finally:
        container.stop(kill=True)
    code, out = capture(container, "/bin/sh", "-c", "cat /proc/1/oom_score_adj /proc/self/oom_score_adj",
                        execute=True)
    assert out.split() == ["10", "10"]  # execute's minimal init too, and what it forks inherits it


def test_proc_file_that_cannot_be_written_is_a_start_error(make_container):
    container = make_container("prc2")
    append_config(container, "lxc.proc.no_such_file = 1\n")
    with pytest.raises(LxcframeError, match="procfs") as info:
        container.execute(["/bin/true"])
    assert config_line(container, "lxc.proc.no_such_file") in str(info.value)
    assert "No such file" in str(info.value)


def test_proc_key_must_name_a_file() -> None:
    container_config = load_text("lxc.proc... = 1\n", Plugins(environ={}).key_registry())
    [problem] = procfs.lxcframe_validate(container_config)
    assert problem.startswith("<string>:1: lxc.proc...")


# --- disabling ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("plugin", "key"), [
    ("prlimit", "lxc.prlimit.nofile"),
    ("prlimit", "lxc.prlimit.bogus"),
    ("sysctl", "lxc.sysctl.net.ipv4.ip_forward"),
    ("sysctl", "lxc.sysctl.vm.swappiness"),
    ("procfs", "lxc.proc.oom_score_adj"),
])
def test_disabled_plugin_keys_are_reported_as_its_own(plugin: str, key: str) -> None:
    config = load_text(f"{key} = 1\n", Plugins([plugin], environ={}).key_registry())
    [item] = config.unhandled
    assert (item.plugin, item.why) == (plugin, "is disabled on this host")
    assert item.describe().startswith(f"<string>:1: {key}: handled by plugin {plugin!r}")


def test_disabled_plugins_leave_init_alone(make_container, lxcpath):
    container = make_container("dis1", config=(
        ("lxc.prlimit.nofile", "100"),
        ("lxc.proc.oom_score_adj", "7"),
    ))
    disabled = Container("dis1", lxcpath, disable=("prlimit", "procfs"))
    with pytest.raises(ConfigError, match=r"lxc\.prlimit\.nofile.*plugin 'prlimit'.*lxc\.proc\.oom_score_adj"):
        disabled.execute(["/bin/true"])  # keys it cannot apply stop the start, as in LXC
    # A host that opted out (unhandled_keys = "warn") starts it without them.
    with open(os.environ["LXCFRAME_HOST_CONFIG"], "a") as handle:
        handle.write('[plugins]\nunhandled_keys = "warn"\n')
    disabled = Container("dis1", lxcpath, disable=("prlimit", "procfs"))
    code, out = capture(disabled, "/bin/sh", "-c", "ulimit -n; cat /proc/self/oom_score_adj", execute=True)
    assert code == 0, out
    assert out.split()[0] != "100" and out.split()[1] != "7"
    code, out = capture(container, "/bin/sh", "-c", "ulimit -n; cat /proc/self/oom_score_adj", execute=True)
    assert out.split() == ["100", "7"]
