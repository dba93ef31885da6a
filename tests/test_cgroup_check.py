"""The cgroup plugin's rows in ``lxcframe check``, the mount-table classification behind them, and the
names that switch a driver off: ``[cgroup] drivers`` in the host config, ``cgroup.NAME`` as a plugin name.

Host-dependent expectations are read from the host's own files by ``tests/hostfacts.py``, independently of
lxcframe, so that these hold on a hybrid VM, a pure cgroup2 host and a legacy one alike.
"""

from __future__ import annotations

import pytest

from lxcframe.errors import ConfigError, PluginError
from lxcframe.hostconfig import load_host_config
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins.cgroup import mountinfo
from lxcframe.plugins.cgroup.mountinfo import CgroupLayout, cgroup_layout, parse_cgroup_layout
from lxcframe.plugins.cgroup.probe import probe_layout
from lxcframe.probe import Probe

from . import hostfacts
from .conftest import run_cli

FACTS = hostfacts.cgroups()


def cgroup_rows(plugins: Plugins) -> list[tuple[str, Probe]]:
    """Every check row about cgroups with the plugin that reported it."""
    rows = []
    for impl in plugins.hook.lxcframe_check.get_hookimpls():
        rows += [(impl.plugin_name, probe) for probe in impl.function() if probe.name.split(".")[0] == "cgroup"]
    return rows


# --- lxcframe check ----------------------------------------------------------------------------------


def test_check_lists_the_layout_and_each_driver_once_as_the_cgroup_plugins():
    rows = cgroup_rows(Plugins())
    assert [(plugin, probe.name) for plugin, probe in rows] == [
        ("cgroup", "cgroup"), ("cgroup", "cgroup.v1"), ("cgroup", "cgroup.v2"), ("cgroup", "cgroup.bpf_devices")]
    found = {probe.name: probe for _, probe in rows}
    v1, v2 = found["cgroup.v1"], found["cgroup.v2"]
    assert v1.detail.startswith(f"layout {FACTS.mode}") and v2.detail.startswith(f"layout {FACTS.mode}")
    assert v1.supported == bool(FACTS.v1)
    if FACTS.v1:
        for mount in FACTS.v1:
            label = ",".join(sorted(mount.controllers) + sorted(f"name={n}" for n in mount.named))
            assert f"{label} at {mount.mountpoint} (this process: {FACTS.own[mount.parts]})" in v1.detail, v1
    else:
        assert v1.detail == f"layout {FACTS.mode}: no writable cgroup v1 hierarchy is mounted"
    assert v2.supported == (FACTS.unified_mount is not None)
    if FACTS.unified_mount is not None:
        offered = " ".join(FACTS.unified_controllers) or "none"
        assert f"unified at {FACTS.unified_mount} (this process: {FACTS.own_unified}); " \
               f"controllers it can hand down: {offered};" in v2.detail, v2
    else:
        assert v2.detail == f"layout {FACTS.mode}: no writable cgroup2 filesystem is mounted"


def test_without_the_cgroup_plugin_check_has_no_cgroup_row():
    assert cgroup_rows(Plugins(disable=["cgroup"])) == []


def test_cgroup_layout_matches_the_host():
    layout = cgroup_layout()
    assert layout.mode == FACTS.mode
    assert layout.unified_mount == FACTS.unified_mount
    assert layout.unified_controllers == FACTS.unified_controllers
    assert set(layout.v1_controllers) == FACTS.v1_controllers
    assert set(layout.v1_named) == FACTS.v1_named
    assert set(layout.v1_mounts) == {m.mountpoint for m in FACTS.v1_mounts}
    assert not any("=" in c for c in layout.v1_controllers)  # name=systemd is a name, not a controller
    probe = probe_layout()
    assert probe.name == "cgroup"
    assert probe.supported == (FACTS.mode != "none")
    assert probe.detail.split(";")[0] == FACTS.mode
    unified = f"cgroup2 at {FACTS.unified_mount} (controllers: {' '.join(FACTS.unified_controllers) or '(none)'})"
    # What this process's /proc/self/cgroup lists must fit the mounts: each layout asserted for itself.
    if FACTS.mode == "hybrid":
        assert FACTS.unified_mount != hostfacts.CGROUP_ROOT and FACTS.v1_mounts
        assert unified in probe.detail and "v1 controllers: " in probe.detail
        assert FACTS.own_unified is not None  # a hybrid process is in the unified tree too
        assert all(m.parts in FACTS.own for m in FACTS.v1_mounts)
    elif FACTS.mode == "unified":
        assert unified in probe.detail
        assert FACTS.own_unified is not None
        if not FACTS.v1_mounts:
            assert "v1 controllers" not in probe.detail
            # Only the unified line (a v1 hierarchy mounted nowhere but still alive may add others).
            assert all(parts == frozenset() or not (parts & FACTS.v1_controllers) for parts in FACTS.own)
    elif FACTS.mode == "legacy":
        assert FACTS.unified_mount is None and "cgroup2 at" not in probe.detail
        assert "v1 controllers: " in probe.detail
        assert all(m.parts in FACTS.own for m in FACTS.v1_mounts)
    else:
        assert FACTS.mode == "none" and probe.detail.startswith("none: no cgroup")


def test_missing_mountinfo_gives_an_unsupported_layout_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mountinfo, "MOUNTINFO", "/nonexistent/mountinfo")
    probe = probe_layout()
    assert probe == Probe("cgroup", False, "probe failed: FileNotFoundError: [Errno 2] No such file or directory: "
                                           "'/nonexistent/mountinfo'")


# --- mountinfo parsing ---------------------------------------------------------------------------------

UNIFIED = """\
22 1 0:21 / /proc rw,nosuid - proc proc rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:30 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/net_cls,net_prio rw shared:13 master:1 - cgroup cgroup rw,net_cls,net_prio
"""

LEGACY = """\
40 31 0:37 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,noprefix,release_agent=/x
42 31 0:39 / /sys/fs/cgroup/with\\040space rw,relatime - cgroup cgroup rw,pids
"""


def test_parse_unified() -> None:
    assert parse_cgroup_layout(UNIFIED) == CgroupLayout(mode="unified", unified_mount="/sys/fs/cgroup")


def test_parse_hybrid() -> None:
    layout = parse_cgroup_layout(HYBRID)
    assert layout.mode == "hybrid"
    assert layout.unified_mount == "/sys/fs/cgroup/unified"
    assert layout.v1_controllers == ("cpu", "cpuacct", "net_cls", "net_prio")
    assert layout.v1_named == ("systemd",)


def test_parse_legacy() -> None:
    layout = parse_cgroup_layout(LEGACY)
    assert layout.mode == "legacy"
    assert layout.unified_mount is None
    assert layout.v1_controllers == ("memory", "cpuset", "pids")
    assert "/sys/fs/cgroup/with space" in layout.v1_mounts


def test_parse_cgroup2_on_sys_fs_cgroup_wins() -> None:
    assert parse_cgroup_layout(UNIFIED + LEGACY).mode == "unified"


def test_parse_none_and_garbage() -> None:
    assert parse_cgroup_layout("").mode == "none"
    assert parse_cgroup_layout("garbage line\n1 2 3\n").mode == "none"


# --- switching a driver off by name ------------------------------------------------------------------------


def write_host_config(tmp_path, text: str) -> str:
    path = tmp_path / "lxcframe.toml"
    path.write_text(text)
    return str(path)


def test_host_config_drivers_are_read(tmp_path) -> None:
    path = write_host_config(tmp_path, '[plugins]\ndisable = []\n\n[cgroup]\ndrivers = ["v1", "v1"]\n')
    assert load_host_config(path).cgroup_drivers == ("v1",)
    assert load_host_config(write_host_config(tmp_path, "[cgroup]\n")).cgroup_drivers is None
    assert load_host_config(write_host_config(tmp_path, "")).cgroup_drivers is None


@pytest.mark.parametrize(("text", "line", "key", "value", "message"), [
    ('lxcpath = "/var/lib/x"\n[cgroup]\n# which drivers run\ndrivers = ["v2", "vv2"]\n', 4, "cgroup.drivers", "vv2",
     "no cgroup driver of that name (drivers: v1, v2); did you mean 'v2'?"),
    ('[cgroup]\ndrivers = ["cgroup2"]\n', 2, "cgroup.drivers", "cgroup2",
     "no cgroup driver of that name (drivers: v1, v2)"),
    ("[cgroup]\ndrivers = []\n", 2, "cgroup.drivers", None,
     'expected at least one driver (to run without cgroups: [plugins] disable = ["cgroup"])'),
    ('[cgroup]\ndrivers = "v1"\n', 2, "cgroup.drivers", None, "expected a list of cgroup driver names (v1, v2)"),
    ("[cgroup]\ndrivers = [1]\n", 2, "cgroup.drivers", None, "expected a list of cgroup driver names (v1, v2)"),
    ('cgroup = "v1"\n', 1, "cgroup", None, "expected a table ([cgroup])"),
    ('\n[cgroup]\ndriver = ["v1"]\n', 3, "cgroup.driver", None, "unknown key (did you mean 'cgroup.drivers'?)"),
])
def test_a_bad_drivers_setting_names_file_line_and_key(tmp_path, text, line, key, value, message) -> None:
    path = write_host_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_host_config(path)
    error = caught.value
    assert (error.path, error.line, error.key, error.value, error.reason) == (path, line, key, value, message)


def test_a_bad_driver_name_stops_every_command(tmp_path, monkeypatch) -> None:
    path = write_host_config(tmp_path, '[cgroup]\ndrivers = ["v1", "v4"]\n')
    monkeypatch.setenv("LXCFRAME_HOST_CONFIG", path)
    result = run_cli("plugins")
    assert result.returncode != 0
    assert f"{path}:2: cgroup.drivers = 'v4': no cgroup driver of that name (drivers: v1, v2)" in result.stderr


def test_driver_names_are_plugin_names_to_disable() -> None:
    assert Plugins(disable=["cgroup.v1"]).disabled == frozenset({"cgroup.v1"})
    with pytest.raises(PluginError, match=r"no plugin named 'cgroup\.v3' is installed \(did you mean 'cgroup\.v"):
        Plugins(disable=["cgroup.v3"])
    result = run_cli("-p", "no:cgroup.v0", "plugins")
    assert result.returncode != 0 and "-p no:cgroup.v0: no plugin named 'cgroup.v0' is installed" in result.stderr
