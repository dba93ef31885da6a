"""Tests of the ``lxcframe`` command, run as a subprocess (``python -m lxcframe``).

Every call gets LXCFRAME_RUNDIR under tmp_path (no state lands in /run) and a host config path that does
not exist (the host's own /etc/lxcframe/lxcframe.toml does not change what is tested).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lxcframe.config.model import load_config
from lxcframe.plugin_manager import Plugins
from lxcframe.version import __version__

Runner = Callable[..., subprocess.CompletedProcess[str]]

COMMON_CONF = "/usr/share/lxc/config/common.conf"
BUILTINS = ("core", "templates", "mounts", "devices", "caps")

CONTAINER_CONFIG = """\
# Hand-made container c1
lxc.rootfs.path = dir:/tmp

# Identity
lxc.uts.name = c1
lxc.mount.entry = /srv/a srv/a none bind,create=dir 0 0
# end of mounts
lxc.pty.max = 16
"""


@pytest.fixture
def cli(tmp_path: Path) -> Runner:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LXCFRAME_")}
    env["LXCFRAME_RUNDIR"] = str(tmp_path / "run")
    env["LXCFRAME_HOST_CONFIG"] = str(tmp_path / "no-host-config.toml")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lxcframe", *args],
            capture_output=True, text=True, env=env, timeout=120, check=False, cwd=str(tmp_path),
        )

    return run


@pytest.fixture
def lxcpath(tmp_path: Path) -> Path:
    path = tmp_path / "lxc"
    (path / "c1").mkdir(parents=True)
    (path / "c1" / "config").write_text(CONTAINER_CONFIG)
    return path


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lxcframe: error: ")
    return lines[0]


# --- version, plugins, extensions, check ---------------------------------------------------------------


def test_version(cli: Runner) -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout == f"lxcframe {__version__}\n"
    assert result.stderr == ""


def test_plugins_json(cli: Runner) -> None:
    result = cli("plugins", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in BUILTINS:
        assert rows[name]["state"] == "enabled", rows[name]
        assert rows[name]["builtin"] is True
        assert rows[name]["hooks"]
    assert "lxc_log" in rows["core"]["extensions"]


def test_plugins_text(cli: Runner) -> None:
    result = cli("plugins")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "DISTRIBUTION", "VERSION", "STATE"]
    states = {line.split()[0]: line.split()[3] for line in lines[1:]}
    assert all(states[name] == "enabled" for name in BUILTINS)


@pytest.mark.parametrize(
    "args",
    [("-p", "no:caps", "plugins"), ("plugins", "-p", "no:caps")],
    ids=["before-verb", "after-verb"],
)
def test_plugins_with_caps_disabled(cli: Runner, args: tuple[str, ...]) -> None:
    result = cli(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["caps"]["state"] == "disabled"
    assert rows["caps"]["hooks"] == []
    assert all(rows[name]["state"] == "enabled" for name in BUILTINS if name != "caps")


def test_plugins_disabled_text_shows_state(cli: Runner) -> None:
    result = cli("-p", "no:caps", "plugins")
    assert result.returncode == 0
    [caps_line] = [line for line in result.stdout.splitlines() if line.startswith("caps ")]
    assert "disabled" in caps_line


def test_disabling_core_is_one_clear_error(cli: Runner) -> None:
    result = cli("-p", "no:core", "plugins")
    line = assert_one_error_line(result)
    assert "essential" in line
    assert "'core'" in line
    assert result.stdout == ""


def test_malformed_plugin_option(cli: Runner) -> None:
    line = assert_one_error_line(cli("-p", "caps", "plugins"))
    assert "no:NAME" in line


def test_extensions(cli: Runner) -> None:
    result = cli("extensions")
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert "lxc_log" in names
    assert names == sorted(names)
    as_json = cli("extensions", "--format", "json")
    assert json.loads(as_json.stdout) == names


def test_check_json(cli: Runner) -> None:
    result = cli("check", "--format", "json")
    assert result.stderr == ""
    entries = json.loads(result.stdout)
    assert entries
    for entry in entries:
        assert set(entry) == {"plugin", "name", "supported", "required", "detail"}
        assert isinstance(entry["name"], str)
        assert entry["name"]
        assert isinstance(entry["supported"], bool)
        assert isinstance(entry["detail"], str)
    assert result.returncode == (0 if all(e["supported"] or not e["required"] for e in entries) else 1)
    names = [(e["plugin"], e["name"]) for e in entries]
    assert len(names) == len(set(names))


# --- config validate -----------------------------------------------------------------------------------------


def test_validate_good_file(cli: Runner, tmp_path: Path) -> None:
    path = tmp_path / "good.conf"
    path.write_text(CONTAINER_CONFIG)
    result = cli("config", "validate", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}: valid" in result.stdout
    assert result.stderr == ""


def test_validate_unknown_key(cli: Runner, tmp_path: Path) -> None:
    path = tmp_path / "bad.conf"
    path.write_text("lxc.rootfs.path = /srv\nlxc.uts.nmae = web\n")
    line = assert_one_error_line(cli("config", "validate", str(path)))
    assert f"{path}:2:" in line
    assert "lxc.uts.nmae" in line
    assert "did you mean 'lxc.uts.name'" in line


def test_validate_reports_every_error(cli: Runner, tmp_path: Path) -> None:
    path = tmp_path / "bad.conf"
    path.write_text("lxc.uts.nmae = web\nlxc.rootfs.managed = 2\nlxc.pty.max = 3\nlxc.bogus.key = 1\n")
    result = cli("config", "validate", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, result.stderr
    for number, line in zip((1, 2, 4), lines, strict=True):
        assert line.startswith(f"lxcframe: error: {path}:{number}: "), line


def test_validate_line_without_equals(cli: Runner, tmp_path: Path) -> None:
    path = tmp_path / "bad.conf"
    path.write_text("# fine\nlxc.uts.name web\n")
    line = assert_one_error_line(cli("config", "validate", str(path)))
    assert f"{path}:2:" in line


def test_validate_stock_common_conf_names_plugins_of_unhandled_keys(cli: Runner) -> None:
    assert os.path.exists(COMMON_CONF), "LXC's stock configs are installed by scripts/setup-host.sh"
    result = cli("config", "validate", COMMON_CONF)
    assert result.returncode == 0, result.stderr
    assert f"{COMMON_CONF}: valid" in result.stdout
    expected = load_config(COMMON_CONF, Plugins(environ={}).key_registry()).unhandled
    # With the console plugin every key of common.conf has a plugin here; any left must be named.
    for item in expected:
        assert f"{item.path}:{item.line}: {item.key}: handled by plugin {item.plugin!r}" in result.stdout
    assert "lxc.tty.max:" not in result.stdout  # the console plugin handles it


def test_validate_json(cli: Runner, tmp_path: Path) -> None:
    path = tmp_path / "c.conf"
    path.write_text("lxc.uts.name = a\nlxc.cap.drop = sys_module\n")
    result = cli("-p", "no:caps", "config", "validate", str(path), "--format", "json")
    assert result.returncode == 1, "a key no enabled plugin applies is refused by default"
    assert f"{path}:2: lxc.cap.drop" in result.stderr and "plugin 'caps'" in result.stderr
    # A host that opted out gets the keys listed, the config valid.
    (tmp_path / "no-host-config.toml").write_text('[plugins]\nunhandled_keys = "warn"\n')
    result = cli("-p", "no:caps", "config", "validate", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["valid"] is True
    assert data["keys"] == 1
    [note] = data["unhandled"]
    assert "lxc.cap.drop" in note
    assert "'caps'" in note
    assert "disabled on this host" in note


# --- config get / set --------------------------------------------------------------------------------------------


def test_config_get(cli: Runner, lxcpath: Path) -> None:
    result = cli("-P", str(lxcpath), "config", "get", "c1", "lxc.uts.name")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "c1\n"
    result = cli("-P", str(lxcpath), "config", "get", "c1", "lxc.rootfs.path")
    assert result.stdout == "dir:/tmp\n"
    # A known key that is not set prints nothing and succeeds.
    result = cli("-P", str(lxcpath), "config", "get", "c1", "lxc.init.cmd")
    assert (result.returncode, result.stdout) == (0, "")


def test_config_get_unknown_key(cli: Runner, lxcpath: Path) -> None:
    line = assert_one_error_line(cli("-P", str(lxcpath), "config", "get", "c1", "lxc.uts.nmae"))
    assert "lxc.uts.nmae" in line


def test_config_get_missing_container(cli: Runner, lxcpath: Path) -> None:
    line = assert_one_error_line(cli("-P", str(lxcpath), "config", "get", "nope", "lxc.uts.name"))
    assert "no such container" in line


def test_config_set_keeps_comments(cli: Runner, lxcpath: Path) -> None:
    config = lxcpath / "c1" / "config"
    result = cli("-P", str(lxcpath), "config", "set", "c1", "lxc.uts.name", "web01")
    assert result.returncode == 0, result.stderr
    assert config.read_text() == CONTAINER_CONFIG.replace("lxc.uts.name = c1", "lxc.uts.name = web01")
    result = cli("-P", str(lxcpath), "config", "get", "c1", "lxc.uts.name")
    assert result.stdout == "web01\n"


def test_config_set_repeatable_key(cli: Runner, lxcpath: Path) -> None:
    config = lxcpath / "c1" / "config"
    entry = "/srv/b srv/b none bind,create=dir 0 0"
    result = cli("-P", str(lxcpath), "config", "set", "c1", "lxc.mount.entry", entry)
    assert result.returncode == 0, result.stderr
    assert config.read_text() == CONTAINER_CONFIG.replace(
        "# end of mounts\n", f"lxc.mount.entry = {entry}\n# end of mounts\n"
    )
    result = cli("-P", str(lxcpath), "config", "get", "c1", "lxc.mount.entry")
    assert result.stdout == f"/srv/a srv/a none bind,create=dir 0 0\n{entry}\n"


def test_config_set_bad_value(cli: Runner, lxcpath: Path) -> None:
    config = lxcpath / "c1" / "config"
    line = assert_one_error_line(cli("-P", str(lxcpath), "config", "set", "c1", "lxc.rootfs.managed", "2"))
    assert "lxc.rootfs.managed" in line
    assert "expected 0 or 1" in line
    assert config.read_text() == CONTAINER_CONFIG


def test_config_set_unknown_key(cli: Runner, lxcpath: Path) -> None:
    line = assert_one_error_line(cli("-P", str(lxcpath), "config", "set", "c1", "lxc.uts.nmae", "x"))
    assert "did you mean 'lxc.uts.name'" in line
    assert (lxcpath / "c1" / "config").read_text() == CONTAINER_CONFIG


def test_config_set_key_of_disabled_plugin(cli: Runner, lxcpath: Path) -> None:
    line = assert_one_error_line(
        cli("-p", "no:caps", "-P", str(lxcpath), "config", "set", "c1", "lxc.cap.drop", "sys_admin")
    )
    assert "'caps'" in line
    assert "disabled on this host" in line


def test_debug_shows_traceback(cli: Runner, lxcpath: Path) -> None:
    result = cli("--debug", "-P", str(lxcpath), "config", "set", "c1", "lxc.rootfs.managed", "2")
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr
    assert "expected 0 or 1" in result.stderr
    assert (lxcpath / "c1" / "config").read_text() == CONTAINER_CONFIG
