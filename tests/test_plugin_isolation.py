"""A misbehaving plugin fails alone: misspelled hooks, clashing or raising key declarations, failed registration.

Each failing plugin is listed ``failed (reason)`` by ``Plugins`` and ``lxcframe plugins`` (text and json),
leaves no hook implementation behind, and the host goes on working: keys resolve, a container starts and
runs a command. Only an essential plugin failing stops everything, with a clear error.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from lxcframe import state as st
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import load_text
from lxcframe.container import Container
from lxcframe.errors import PluginError
from lxcframe.hooks import hookimpl
from lxcframe.plugin_manager import ENABLED, FAILED, PluginRecord, Plugins
from lxcframe.plugins import BUILTIN_PLUGINS

from .conftest import run_cli_with_site
from .test_plugins import make_distribution

MISSPELLED_REASON = "unknown hook lxcframe_child_premount; did you mean lxcframe_child_pre_mount?"
CLASH_REASON = "config key 'lxc.uts.name' is declared by plugin 'core' already"


def record(plugins: Plugins, name: str) -> PluginRecord:
    [found] = [r for r in plugins.records() if r.name == name]
    return found


def implementations_of(plugins: Plugins, plugin_name: str) -> list[str]:
    """Every hook that still has an implementation of ``plugin_name`` registered."""
    return sorted(name for name, caller in vars(plugins.pm.hook).items()
                  if any(impl.plugin_name == plugin_name for impl in caller.get_hookimpls()))


def assert_failed_alone(plugins: Plugins, name: str, reason: str) -> None:
    rec = record(plugins, name)
    assert (rec.state, rec.reason, rec.hooks, rec.extensions) == (FAILED, reason, (), ())
    assert not plugins.is_enabled(name)
    assert implementations_of(plugins, name) == []
    for builtin in BUILTIN_PLUGINS:
        assert record(plugins, builtin).state == ENABLED, record(plugins, builtin)
    assert plugins.key_registry().lookup("lxc.uts.name").plugin == "core"  # type: ignore[union-attr]


# --- the plugins ---------------------------------------------------------------------------------------------


class MisspelledHook:
    """Meant to run at pre-mount: without the check it would be listed enabled and do nothing."""

    @hookimpl
    def lxcframe_child_premount(self, ctx: object) -> None:
        raise AssertionError("never called")

    @hookimpl
    def lxcframe_api_extensions(self) -> list[str]:
        return ["misspelled_feature"]


def unmarked_misspelled_module() -> types.ModuleType:
    """A module whose ``lxcframe_*`` function lacks @hookimpl and matches no hookspec either."""
    module = types.ModuleType("lxcframe_test_unmarked")

    def lxcframe_pre_strat(ctx: object) -> None:
        raise AssertionError("never called")

    module.lxcframe_pre_strat = lxcframe_pre_strat  # type: ignore[attr-defined]
    return module


class OptionalUnknownHook:
    @hookimpl(optionalhook=True)
    def lxcframe_some_future_hook(self) -> None:
        return None


class ClashingKey:
    @hookimpl
    def lxcframe_config_keys(self) -> list[KeySpec]:
        return [KeySpec("lxc.clash.own"), KeySpec("lxc.uts.name")]

    @hookimpl
    def lxcframe_validate(self, config: object) -> list[str]:
        raise AssertionError("a failed plugin's hooks are never called")


class RaisingKeys:
    @hookimpl
    def lxcframe_config_keys(self) -> list[KeySpec]:
        raise RuntimeError("key table missing")


class WidgetKeys:
    @hookimpl
    def lxcframe_config_keys(self) -> list[KeySpec]:
        return [KeySpec("lxc.widget.count")]


class RaisingExtensions:
    @hookimpl
    def lxcframe_api_extensions(self) -> list[str]:
        raise OSError(2, "No such file or directory")


class WrongArgument:
    """pluggy refuses the second implementation; the first must not stay registered."""

    @hookimpl
    def lxcframe_api_extensions(self) -> list[str]:
        return ["wrong_argument_feature"]

    @hookimpl
    def lxcframe_pre_start(self, ctx: object, bogus: object) -> None:
        raise AssertionError("never called")


# --- in-process ----------------------------------------------------------------------------------------------


def test_misspelled_hook_fails_the_plugin_with_a_suggestion() -> None:
    plugins = Plugins(environ={}, extra=[("typo", MisspelledHook())])
    assert_failed_alone(plugins, "typo", MISSPELLED_REASON)
    assert not plugins.has_api_extension("misspelled_feature")


def test_unmarked_function_with_an_unknown_hook_name_fails_the_plugin() -> None:
    plugins = Plugins(environ={}, extra=[("unmarked", unmarked_misspelled_module())])
    assert_failed_alone(plugins, "unmarked", "unknown hook lxcframe_pre_strat; did you mean lxcframe_pre_start?")


def test_an_optional_unknown_hook_is_allowed() -> None:
    plugins = Plugins(environ={}, extra=[("optional", OptionalUnknownHook())])
    assert record(plugins, "optional").state == ENABLED
    assert record(plugins, "optional").hooks == ("lxcframe_some_future_hook",)


def test_key_clash_with_core_fails_the_newcomer() -> None:
    plugins = Plugins(environ={}, extra=[("clash", ClashingKey())])
    assert_failed_alone(plugins, "clash", CLASH_REASON)
    registry = plugins.key_registry()
    # Its own key is reported as belonging to a failed plugin, not as unknown.
    assert registry.lookup("lxc.clash.own") is None
    assert registry.inactive_owner("lxc.clash.own") == ("clash", f"failed ({CLASH_REASON})")
    config = load_text("lxc.uts.name = web\n", registry)
    assert config.get("lxc.uts.name") == "web"


def test_key_clash_between_two_third_parties_names_the_first() -> None:
    plugins = Plugins(environ={}, extra=[("widgets", WidgetKeys()), ("widgets2", WidgetKeys())])
    assert record(plugins, "widgets").state == ENABLED
    assert_failed_alone(plugins, "widgets2", "config key 'lxc.widget.count' is declared by plugin 'widgets' already")
    assert plugins.key_registry().lookup("lxc.widget.count").plugin == "widgets"  # type: ignore[union-attr]


def test_raising_key_declaration_fails_the_plugin() -> None:
    plugins = Plugins(environ={}, extra=[("raiser", RaisingKeys())])
    assert_failed_alone(plugins, "raiser", "lxcframe_config_keys raised RuntimeError: key table missing")
    # Its keys are unknown: its namespace by convention is said to be its own.
    assert plugins.key_registry().inactive_owner("lxc.raiser.size") == (
        "raiser", "failed (lxcframe_config_keys raised RuntimeError: key table missing)")


def test_raising_extension_declaration_fails_the_plugin() -> None:
    plugins = Plugins(environ={}, extra=[("noext", RaisingExtensions())])
    assert_failed_alone(plugins, "noext",
                        "lxcframe_api_extensions raised FileNotFoundError: [Errno 2] No such file or directory")


def test_failed_pluggy_validation_leaves_no_implementation() -> None:
    plugins = Plugins(environ={}, extra=[("wrongarg", WrongArgument())])
    rec = record(plugins, "wrongarg")
    assert rec.state == FAILED
    assert rec.reason.startswith("PluginValidationError: Plugin 'wrongarg' for hook 'lxcframe_pre_start'")
    assert "bogus" in rec.reason
    assert implementations_of(plugins, "wrongarg") == []
    assert not plugins.has_api_extension("wrong_argument_feature")


def test_a_plugin_under_a_taken_name_fails_without_touching_the_other() -> None:
    plugins = Plugins(environ={}, extra=[("caps", WidgetKeys())])
    [builtin, other] = [r for r in plugins.records() if r.name == "caps"]
    assert (builtin.state, builtin.builtin) == (ENABLED, True)
    assert "lxcframe_child_security" in builtin.hooks
    assert (other.state, other.builtin) == (FAILED, False)
    assert other.reason.startswith("ValueError: Plugin name already registered: caps=")
    assert plugins.key_registry().lookup("lxc.cap.drop").plugin == "caps"  # type: ignore[union-attr]
    assert plugins.key_registry().lookup("lxc.widget.count") is None


class BrokenCore:
    @hookimpl
    def lxcframe_child_premount(self, ctx: object) -> None:
        return None


def test_essential_plugin_failing_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BUILTIN_PLUGINS, "core", f"{__name__}:BrokenCore")
    with pytest.raises(PluginError) as info:
        Plugins(environ={})
    assert str(info.value) == f"essential plugin 'core' failed: {MISSPELLED_REASON}"


def test_essential_plugin_failing_to_import_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BUILTIN_PLUGINS, "core", "lxcframe.plugins.no_such_core")
    with pytest.raises(PluginError) as info:
        Plugins(environ={})
    assert str(info.value) == ("essential plugin 'core' failed to load: "
                               "ModuleNotFoundError: No module named 'lxcframe.plugins.no_such_core'")


@pytest.mark.container
def test_container_starts_beside_failed_plugins(make_container) -> None:
    plugins = Plugins(extra=[("typo", MisspelledHook()), ("clash", ClashingKey()), ("raiser", RaisingKeys())])
    assert [r.name for r in plugins.records() if r.state == FAILED] == ["typo", "clash", "raiser"]
    container = make_container("isoinproc", plugins=plugins)
    assert container.execute(["/bin/sh", "-c", "echo $(hostname) ran > /ran"]) == 0
    rootfs = container.load_config().get("lxc.rootfs.path")
    assert Path(rootfs, "ran").read_text() == "isoinproc ran\n"
    assert container.state == st.STOPPED


# --- through real entry points and the CLI -------------------------------------------------------------------


@pytest.fixture
def misbehaving_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "typo-plug", "1.0", "typo_plug", """
        from lxcframe.hooks import hookimpl

        @hookimpl
        def lxcframe_child_premount(ctx):
            raise AssertionError("never called")
        """, "typoplug")
    make_distribution(site, "clash-plug", "1.1", "clash_plug", """
        from lxcframe.config.keys import KeySpec
        from lxcframe.hooks import hookimpl

        @hookimpl
        def lxcframe_config_keys():
            return [KeySpec("lxc.uts.name")]
        """, "clashplug")
    make_distribution(site, "good-plug", "2.0", "good_plug", """
        from lxcframe.hooks import hookimpl

        @hookimpl
        def lxcframe_api_extensions():
            return ["good_plug_feature"]
        """, "goodplug")
    return site


def test_cli_lists_failed_plugins_as_json(rundir: str, misbehaving_site: Path) -> None:
    result = run_cli_with_site(misbehaving_site, "plugins", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {k: rows["typoplug"][k] for k in ("distribution", "version", "state", "reason", "hooks")} == {
        "distribution": "typo-plug", "version": "1.0", "state": FAILED, "reason": MISSPELLED_REASON, "hooks": []}
    assert {k: rows["clashplug"][k] for k in ("distribution", "version", "state", "reason", "hooks")} == {
        "distribution": "clash-plug", "version": "1.1", "state": FAILED, "reason": CLASH_REASON, "hooks": []}
    assert (rows["goodplug"]["state"], rows["goodplug"]["extensions"]) == (ENABLED, ["good_plug_feature"])
    for name in BUILTIN_PLUGINS:
        assert rows[name]["state"] == ENABLED


def test_cli_lists_failed_plugins_as_text(rundir: str, misbehaving_site: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # wide enough that no reason is cut
    result = run_cli_with_site(misbehaving_site, "plugins")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert lines["typoplug"].split(None, 3)[1:3] == ["typo-plug", "1.0"]
    assert f"failed ({MISSPELLED_REASON})" in lines["typoplug"]
    assert f"failed ({CLASH_REASON})" in lines["clashplug"]
    assert lines["goodplug"].split()[3] == ENABLED


@pytest.mark.container
def test_cli_container_starts_and_runs_beside_failed_entry_points(make_container, misbehaving_site: Path) -> None:
    container = make_container("isocli")
    result = run_cli_with_site(misbehaving_site, "-P", container.lxcpath, "execute", "isocli", "--",
                               "/bin/sh", "-c", "echo $(hostname) runs; exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "isocli runs\n"
    # A daemon start through the supervisor too, and its stop.
    assert run_cli_with_site(misbehaving_site, "-P", container.lxcpath, "start", "isocli").returncode == 0
    try:
        assert Container("isocli", container.lxcpath).state == st.RUNNING
        info = run_cli_with_site(misbehaving_site, "-P", container.lxcpath, "info", "isocli", "--format", "json")
        assert json.loads(info.stdout)["state"] == st.RUNNING, info.stderr
    finally:
        stopped = run_cli_with_site(misbehaving_site, "-P", container.lxcpath, "stop", "-k", "isocli")
    assert stopped.returncode == 0, stopped.stderr
    assert result.stderr == ""  # the failed plugins are in `lxcframe plugins`, not on every command
