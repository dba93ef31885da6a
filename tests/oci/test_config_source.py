"""A bundle is a config source read by the builtin plugin ``oci`` through the hook ``lxcframe_config_source``:
what ``lxcframe-oci create`` gets through it, its refusal when the plugin is disabled, a third-party source
read the same way, and the cost of the plugin to every command (nothing of the translation is imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lxcframe.config.parser import RawEntry
from lxcframe.config.source import ConfigSource, read_source
from lxcframe.errors import ConfigError, ConfigErrors, PluginError
from lxcframe.hooks import hookimpl
from lxcframe.hostconfig import HostConfig
from lxcframe.oci.bundle import read_bundle
from lxcframe.oci.create import RUNTIME_LINES, container_config
from lxcframe.plugin_manager import Plugins

from ..conftest import run_cli
from .test_bundle import base_config, write

CHECKOUT = Path(__file__).resolve().parent.parent.parent


def bundle(tmp_path: Path) -> tuple[Path, Path]:
    """A bundle with a two-word argument, a terminal, a umask and an annotation; and a state directory."""
    config = base_config()
    config["process"].update(args=["sh", "-c", "echo 'two words'"], terminal=True,
                             consoleSize={"height": 24, "width": 80})
    config["process"]["user"]["umask"] = 18
    config["annotations"] = {"org.example.owner": "tests"}
    state = tmp_path / "state"
    state.mkdir()
    directory = tmp_path / "bundle"
    directory.mkdir()
    return write(directory, config), state


def plugins(*disable: str, extra: list[tuple[str, object]] | None = None) -> Plugins:
    return Plugins(disable, environ={}, host=HostConfig(), extra=extra or ())


def test_the_oci_plugin_reads_a_bundle_through_the_hook(tmp_path: Path) -> None:
    directory, state = bundle(tmp_path)
    enabled = plugins()
    source = read_source(enabled, str(directory), "c1", str(state), what="the bundle", reader="oci")
    config_json = str(directory / "config.json")
    assert source.path == config_json and source.directory == str(directory)
    # The same lines as the translation's, each located at its field's line of config.json.
    assert source.lines() == read_bundle(str(directory), "c1", state_dir=str(state)).lines()
    lines = (directory / "config.json").read_text().splitlines()
    [cwd] = [entry for entry in source.entries if entry.key == "lxc.init.cwd"]
    assert cwd.path == config_json and '"cwd": "/"' in lines[cwd.line - 1]
    # What a start needs beyond the keys: the exact arguments, the terminal and its size, umask, annotations.
    assert source.args == ("sh", "-c", "echo 'two words'")
    assert (source.terminal, source.console_size, source.umask) == (True, (24, 80), 18)
    assert source.annotations == (("org.example.owner", "tests"),)
    # The config.json itself is recognised too, and reads the same.
    assert read_source(enabled, config_json, "c1", str(state)) == source


def test_create_builds_its_config_from_the_hooks_answer(tmp_path: Path) -> None:
    directory, state = bundle(tmp_path)
    source, config = container_config(str(directory), "c1", str(state), plugins())
    assert isinstance(source, ConfigSource)
    assert config.get("lxc.rootfs.path") == str(directory / "rootfs")
    assert config.get("lxc.init.cwd") == "/"
    for key, value in RUNTIME_LINES:
        assert config.located(key) is not None, (key, value)
    assert config.unhandled == ()


def test_a_bad_field_is_still_named_through_the_hook(tmp_path: Path) -> None:
    """A value its key's validator refuses is reported at its JSON field, as the translation reports it."""
    config = base_config()
    config["hostname"] = "two words"
    write(tmp_path, config)
    with pytest.raises(ConfigError) as info:
        read_source(plugins(), str(tmp_path), "c1", None, what="the bundle", reader="oci")
    assert str(info.value) == (f"{tmp_path}/config.json: hostname: expected a host name of at most 64 letters, "
                               "digits, '-', '_' or '.' (as lxc.uts.name)")


def test_with_oci_disabled_no_bundle_is_read(tmp_path: Path) -> None:
    directory, state = bundle(tmp_path)
    disabled = plugins("oci")
    assert not disabled.is_enabled("oci")
    with pytest.raises(PluginError) as info:
        container_config(str(directory), "c1", str(state), disabled)
    assert str(info.value) == f"no enabled plugin reads the bundle {directory}: plugin oci is disabled"
    assert list(state.iterdir()) == []


@pytest.mark.parametrize("how", ["environment", "host config"])
def test_lxcframe_oci_create_refuses_in_one_line_and_leaves_no_state(tmp_path: Path, how: str) -> None:
    directory, _ = bundle(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LXCFRAME_")}
    env["PYTHONPATH"] = str(CHECKOUT)
    host_config = tmp_path / "host.toml"
    env["LXCFRAME_HOST_CONFIG"] = str(host_config)
    if how == "environment":
        env["LXCFRAME_DISABLE_PLUGINS"] = "oci"
    else:
        host_config.write_text('[plugins]\ndisable = ["oci"]\n')
    root = tmp_path / "root"
    result = subprocess.run([sys.executable, "-m", "lxcframe.oci.cli", "--root", str(root), "create", "--bundle",
                             str(directory), "c1"], capture_output=True, text=True, env=env, timeout=60,
                            stdin=subprocess.DEVNULL, check=False)
    assert result.returncode == 1
    assert result.stderr == f"lxcframe-oci: no enabled plugin reads the bundle {directory}: plugin oci is disabled\n"
    assert not (root / "c1").exists()
    state = subprocess.run([sys.executable, "-m", "lxcframe.oci.cli", "--root", str(root), "state", "c1"],
                           capture_output=True, text=True, env=env, timeout=60, check=False)
    assert state.returncode == 1 and "does not exist" in state.stderr


# --- a third-party source ---------------------------------------------------------------------------------------


class WidgetSource:
    """Reads a made-up format: ``*.widget`` files of ``hostname NAME`` and ``env NAME=VALUE`` lines."""

    @hookimpl
    def lxcframe_config_source(self, path: str, name: str) -> ConfigSource | None:
        if not path.endswith(".widget"):
            return None
        entries = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                word, _, rest = line.strip().partition(" ")
                key = {"hostname": "lxc.uts.name", "env": "lxc.environment", "rootfs": "lxc.rootfs.path"}[word]
                entries.append(RawEntry(key, rest, path, number))
        return ConfigSource(path, tuple(entries), args=("/bin/true", name))


def test_a_third_party_plugin_provides_another_source(tmp_path: Path) -> None:
    widget = tmp_path / "c1.widget"
    widget.write_text(f"hostname w1\nenv A=b c\nrootfs {tmp_path}\n")
    # oci disabled: the widget source needs nothing of it.
    with_widgets = plugins("oci", extra=[("widgets", WidgetSource())])
    source, config = container_config(str(widget), "c1", str(tmp_path), with_widgets)
    assert source.lines() == [("lxc.uts.name", "w1"), ("lxc.environment", "A=b c"),
                              ("lxc.rootfs.path", str(tmp_path))]
    assert source.args == ("/bin/true", "c1")
    assert config.get("lxc.uts.name") == "w1" and config.get_all("lxc.environment") == ("A=b c",)
    # A plugin's complaint names the widget file and its line, as a config file's.
    widget.write_text("hostname w1\nrootfs relative/path\n")
    with pytest.raises(ConfigErrors) as info:
        container_config(str(widget), "c1", str(tmp_path), with_widgets)
    assert str(info.value).startswith(f"{widget}:2: lxc.rootfs.path")


def test_a_third_party_source_is_asked_before_the_bundle_reader(tmp_path: Path) -> None:
    class Everything:
        @hookimpl
        def lxcframe_config_source(self, path: str) -> ConfigSource:
            return ConfigSource(path, (RawEntry("lxc.uts.name", "mine", path, 1),))

    directory, state = bundle(tmp_path)
    source = read_source(plugins(extra=[("everything", Everything())]), str(directory), "c1", str(state))
    assert source.lines() == [("lxc.uts.name", "mine")]
    # A path nobody reads, with the bundle reader enabled: it does not recognise it.
    other = tmp_path / "c1.conf"
    other.write_text("lxc.uts.name = x\n")
    with pytest.raises(PluginError, match=r"reads the bundle .*c1.conf: plugin oci does not recognise it\Z"):
        read_source(plugins(), str(other), "c1", None, what="the bundle", reader="oci")


# --- the plugin as every command sees it ----------------------------------------------------------------------


def test_lxcframe_plugins_lists_oci_with_its_hook_and_extension(cli_env: dict[str, str]) -> None:
    result = run_cli("plugins", "--format", "json", env=cli_env)
    assert result.returncode == 0, result.stderr
    [row] = [row for row in json.loads(result.stdout) if row["name"] == "oci"]
    assert (row["state"], row["builtin"], row["extensions"]) == ("enabled", True, ["oci"])
    assert "lxcframe_config_source" in row["hooks"]
    extensions = run_cli("extensions", env=cli_env)
    assert extensions.returncode == 0 and "oci" in extensions.stdout.split()
    disabled = run_cli("-p", "no:oci", "plugins", "--format", "json", env=cli_env)
    assert [row["state"] for row in json.loads(disabled.stdout) if row["name"] == "oci"] == ["disabled"]


def test_registering_the_plugin_imports_nothing_of_the_translation() -> None:
    """Every command registers ``oci``; the bundle modules are the hook's to import, when a bundle is read."""
    code = ("import sys; from lxcframe.plugin_manager import Plugins; Plugins(); "
            "print(sorted(m for m in sys.modules if m.startswith('lxcframe.oci') or m == 'lxcframe.config.source'))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LXCFRAME_")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                            cwd=str(CHECKOUT), check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_reader_that_failed_to_load_is_named_with_its_reason(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from lxcframe.plugins import BUILTIN_PLUGINS

    monkeypatch.setitem(BUILTIN_PLUGINS, "oci", "lxcframe.plugins.no_such_oci")
    directory, state = bundle(tmp_path)
    with pytest.raises(PluginError) as info:
        # Builtins only: the installed entry point of the real module would clash with the broken one.
        broken = Plugins(environ={"LXCFRAME_DISABLE_PLUGIN_AUTOLOAD": "1"}, host=HostConfig())
        read_source(broken, str(directory), "c1", str(state), what="the bundle", reader="oci")
    assert str(info.value) == (f"no enabled plugin reads the bundle {directory}: plugin oci failed "
                               "(ModuleNotFoundError: No module named 'lxcframe.plugins.no_such_oci')")
