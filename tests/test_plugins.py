"""Tests of plugin loading (lxcframe.plugin_manager), the hookspecs, the stage order and import hygiene."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
import tomllib
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import lxcframe
from lxcframe.config.keys import KeySpec
from lxcframe.config.model import load_text
from lxcframe.errors import ConfigError, PluginError
from lxcframe.hooks import SPEC_MODULES, hookimpl
from lxcframe.hostconfig import HostConfig, load_host_config
from lxcframe.plugin_manager import DISABLE_ENV, DISABLED, ENABLED, FAILED, UNAVAILABLE, PluginRecord, Plugins
from lxcframe.plugins import BUILTIN_PLUGINS
from lxcframe.stages import START_STAGES, Stage
from lxcframe.version import __version__

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(lxcframe.__file__).resolve().parent


def record(plugins: Plugins, name: str) -> PluginRecord:
    [found] = [r for r in plugins.records() if r.name == name]
    return found


# --- test plugins (objects handed in with extra=) -------------------------------------------------------


class ExtensionPlugin:
    @hookimpl
    def lxcframe_api_extensions(self) -> list[str]:
        return ["test_widgets"]

    @hookimpl
    def lxcframe_config_keys(self) -> list[KeySpec]:
        return [KeySpec("lxc.widget.count")]


class UnavailablePlugin:
    @hookimpl
    def lxcframe_unavailable_reason(self) -> str | None:
        return "no /dev/widget on this host"

    @hookimpl
    def lxcframe_config_keys(self) -> list[KeySpec]:
        return [KeySpec("lxc.widget.size"), KeySpec("lxc.widget.<N>.name")]

    @hookimpl
    def lxcframe_api_extensions(self) -> list[str]:
        return ["widget_size"]


def unavailable_module() -> types.ModuleType:
    """The same plugin as a module, the form entry points give."""
    module = types.ModuleType("lxcframe_test_unavailable")

    @hookimpl
    def lxcframe_unavailable_reason() -> str | None:
        return "no /dev/widget on this host"

    @hookimpl
    def lxcframe_config_keys() -> list[KeySpec]:
        return [KeySpec("lxc.widget.size"), KeySpec("lxc.widget.<N>.name")]

    @hookimpl
    def lxcframe_api_extensions() -> list[str]:
        return ["widget_size"]

    for function in (lxcframe_unavailable_reason, lxcframe_config_keys, lxcframe_api_extensions):
        setattr(module, function.__name__, function)
    return module


class CrashingAvailabilityPlugin:
    @hookimpl
    def lxcframe_unavailable_reason(self) -> str | None:
        raise RuntimeError("probe exploded")


class DuplicateKeyPlugin:
    @hookimpl
    def lxcframe_config_keys(self) -> list[KeySpec]:
        return [KeySpec("lxc.uts.name")]


# --- builtins --------------------------------------------------------------------------------------------


def test_builtin_plugins_load_enabled_with_hooks() -> None:
    plugins = Plugins(environ={})
    for name in BUILTIN_PLUGINS:
        rec = record(plugins, name)
        assert rec.state == ENABLED, rec
        assert rec.builtin
        assert (rec.distribution, rec.version) == ("lxcframe", __version__)
        assert rec.hooks, rec
        assert all(h.startswith("lxcframe_") for h in rec.hooks)
        assert plugins.is_enabled(name)
    assert "lxcframe_config_keys" in record(plugins, "core").hooks
    assert "lxcframe_templates" in record(plugins, "templates").hooks
    assert "lxcframe_child_security" in record(plugins, "caps").hooks
    assert "lxc_log" in record(plugins, "core").extensions


def test_builtin_keys_are_owned_by_their_plugin() -> None:
    registry = Plugins(environ={}).key_registry()
    assert registry.lookup("lxc.uts.name").plugin == "core"  # type: ignore[union-attr]
    assert registry.lookup("lxc.mount.entry").plugin == "mounts"  # type: ignore[union-attr]
    assert registry.lookup("lxc.autodev").plugin == "devices"  # type: ignore[union-attr]
    assert registry.lookup("lxc.cap.drop").plugin == "caps"  # type: ignore[union-attr]


# --- disabling ---------------------------------------------------------------------------------------------


def assert_caps_disabled(plugins: Plugins) -> None:
    rec = record(plugins, "caps")
    assert rec.state == DISABLED
    assert not plugins.is_enabled("caps")
    assert record(plugins, "mounts").state == ENABLED
    registry = plugins.key_registry()
    assert registry.lookup("lxc.cap.drop") is None
    assert registry.inactive_owner("lxc.cap.drop") == ("caps", "is disabled on this host")
    # The disabled plugin's hooks are not called.
    assert "caps" not in {plugins.name_of(impl.plugin) for impl in plugins.hook.lxcframe_validate.get_hookimpls()}


def test_disable_by_name() -> None:
    assert_caps_disabled(Plugins(["caps"], environ={}))


@pytest.mark.parametrize("value", ["caps", " caps ", "caps,devices", "devices caps", "devices, caps\n"])
def test_disable_by_environment(value: str) -> None:
    plugins = Plugins(environ={DISABLE_ENV: value})
    assert_caps_disabled(plugins)
    assert record(plugins, "devices").state == (DISABLED if "devices" in value else ENABLED)


def test_environment_is_only_read_from_environ_given() -> None:
    plugins = Plugins(environ={"UNRELATED": "caps"})
    assert plugins.is_enabled("caps")


def test_disable_by_host_config(tmp_path: Path) -> None:
    path = tmp_path / "lxcframe.toml"
    path.write_text('lxcpath = "/srv/lxc"\n\n[plugins]\ndisable = ["caps"]\n')
    host = load_host_config(str(path))
    assert host == HostConfig(path=str(path), disable=("caps",), lxcpath="/srv/lxc")
    assert_caps_disabled(Plugins(host.disable, environ={}))


def test_host_config_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_host_config(str(tmp_path / "absent.toml")) == HostConfig()


def test_host_config_invalid_toml_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "lxcframe.toml"
    path.write_text("[plugins\ndisable = caps\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_host_config(str(path))
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[plugins]\ndisable = "caps"\n', "plugins.disable"),
        ("[plugins]\ndisable = [1]\n", "plugins.disable"),
        ('plugins = "caps"\n', "plugins"),  # not a table
        ('[plugins]\nunhandled_keys = "off"\n', "plugins.unhandled_keys"),
        ('lxcpath = "relative/path"\n', "lxcpath"),
    ],
)
def test_host_config_wrong_types_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "lxcframe.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_host_config(str(path))
    assert (info.value.path, info.value.key) == (str(path), key)


def test_host_config_path_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "host.toml"
    path.write_text('[plugins]\ndisable = ["devices"]\n')
    assert load_host_config(environ={"LXCFRAME_HOST_CONFIG": str(path)}).disable == ("devices",)


@pytest.mark.parametrize(
    "kwargs", [{"disable": ["core"]}, {"environ": {DISABLE_ENV: "caps core"}}], ids=["argument", "environment"]
)
def test_core_is_essential(kwargs: dict[str, Any]) -> None:
    kwargs.setdefault("environ", {})
    with pytest.raises(PluginError, match="essential") as info:
        Plugins(**kwargs)
    assert "'core'" in str(info.value)


def test_two_managers_are_independent() -> None:
    with_caps = Plugins(environ={})
    without_caps = Plugins(["caps"], environ={})
    third = Plugins(environ={})
    assert with_caps.is_enabled("caps")
    assert not without_caps.is_enabled("caps")
    assert third.is_enabled("caps")
    assert with_caps.pm is not without_caps.pm
    assert with_caps.key_registry() is not without_caps.key_registry()
    assert with_caps.key_registry().lookup("lxc.cap.drop") is not None
    assert without_caps.key_registry().lookup("lxc.cap.drop") is None
    only_with_caps = {s.name for s in with_caps.key_registry().specs()} - {
        s.name for s in without_caps.key_registry().specs()
    }
    assert only_with_caps == {"lxc.cap.drop", "lxc.cap.keep", "lxc.no_new_privs"}
    # The registry is built once per manager.
    assert with_caps.key_registry() is with_caps.key_registry()


# --- API extensions ------------------------------------------------------------------------------------------


def test_has_api_extension() -> None:
    plugins = Plugins(environ={})
    assert plugins.has_api_extension(None) is True
    assert plugins.has_api_extension("lxc_log") is True
    assert plugins.has_api_extension("lxc_config_item_is_supported") is True
    assert plugins.has_api_extension("nonexistent") is False
    assert lxcframe.has_api_extension("lxc_log", plugins) is True
    assert lxcframe.has_api_extension("nonexistent", plugins) is False


def test_extension_of_a_plugin_comes_and_goes_with_it() -> None:
    enabled = Plugins(environ={}, extra=[("widgets", ExtensionPlugin())])
    assert enabled.has_api_extension("test_widgets")
    assert record(enabled, "widgets").extensions == ("test_widgets",)
    assert enabled.key_registry().lookup("lxc.widget.count").plugin == "widgets"  # type: ignore[union-attr]

    disabled = Plugins(["widgets"], environ={}, extra=[("widgets", ExtensionPlugin())])
    assert not disabled.has_api_extension("test_widgets")
    assert disabled.has_api_extension("lxc_log")
    assert record(disabled, "widgets").state == DISABLED
    # Its keys are reported as belonging to a disabled plugin, not as unknown.
    config = load_text("lxc.widget.count = 3\n", disabled.key_registry())
    assert [(u.plugin, u.why) for u in config.unhandled] == [("widgets", "is disabled on this host")]


# --- unavailable and failed plugins ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [UnavailablePlugin, unavailable_module], ids=["object", "module"])
def test_unavailable_plugin(make: Callable[[], object]) -> None:
    plugins = Plugins(environ={}, extra=[("widget", make())])
    rec = record(plugins, "widget")
    assert rec.state == UNAVAILABLE
    assert rec.reason == "no /dev/widget on this host"
    assert not plugins.is_enabled("widget")
    assert not plugins.has_api_extension("widget_size")
    config = load_text("lxc.widget.size = 3\nlxc.widget.2.name = w\n", plugins.key_registry())
    assert [u.key for u in config.unhandled] == ["lxc.widget.size", "lxc.widget.2.name"]
    for item in config.unhandled:
        assert item.plugin == "widget"
        assert "unavailable on this host (no /dev/widget on this host)" in item.describe()


def test_failing_availability_check_makes_plugin_unavailable() -> None:
    plugins = Plugins(environ={}, extra=[("crashy", CrashingAvailabilityPlugin())])
    rec = record(plugins, "crashy")
    assert rec.state == UNAVAILABLE
    assert "RuntimeError: probe exploded" in rec.reason
    assert plugins.is_enabled("core")


def test_two_plugins_declaring_one_key() -> None:
    plugins = Plugins(environ={}, extra=[("dupkeys", DuplicateKeyPlugin())])
    rec = record(plugins, "dupkeys")
    assert (rec.state, rec.reason) == (FAILED, "config key 'lxc.uts.name' is declared by plugin 'core' already")
    assert plugins.key_registry().lookup("lxc.uts.name").plugin == "core"  # type: ignore[union-attr]


def make_distribution(site: Path, dist: str, version: str, module: str, source: str, entry_name: str) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[lxcframe.plugins]\n{entry_name} = {module}\n")


def run_cli(tmp_path: Path, *args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LXCFRAME_")}
    env["LXCFRAME_RUNDIR"] = str(tmp_path / "run")
    env["LXCFRAME_HOST_CONFIG"] = str(tmp_path / "no-host-config.toml")
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "lxcframe", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture
def third_party_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(
        site, "broken-plug", "1.0", "broken_plug",
        'raise ImportError("needs libwidget, which is not installed")\n', "brokenplug",
    )
    make_distribution(
        site, "good-plug", "2.0", "good_plug",
        """
        from lxcframe.hooks import hookimpl

        @hookimpl
        def lxcframe_api_extensions():
            return ["good_plug_feature"]
        """,
        "goodplug",
    )
    return site


def test_broken_third_party_plugin_is_reported_and_others_load(tmp_path: Path, third_party_site: Path) -> None:
    result = run_cli(tmp_path, "plugins", "--format", "json", pythonpath=third_party_site)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    broken = rows["brokenplug"]
    assert broken["state"] == FAILED
    assert broken["distribution"] == "broken-plug"
    assert broken["version"] == "1.0"
    assert "ImportError" in broken["reason"]
    assert "needs libwidget" in broken["reason"]
    assert broken["builtin"] is False
    good = rows["goodplug"]
    assert (good["state"], good["distribution"], good["version"]) == (ENABLED, "good-plug", "2.0")
    assert good["extensions"] == ["good_plug_feature"]
    for name in BUILTIN_PLUGINS:
        assert rows[name]["state"] == ENABLED


def test_disabled_third_party_plugin_is_never_imported(tmp_path: Path, third_party_site: Path) -> None:
    result = run_cli(tmp_path, "-p", "no:brokenplug", "plugins", "--format", "json", pythonpath=third_party_site)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["brokenplug"]["state"] == DISABLED
    assert "ImportError" not in rows["brokenplug"]["reason"]


# --- hookspecs, stages, entry points -------------------------------------------------------------------------


def test_every_hook_function_is_a_documented_hookspec() -> None:
    problems = []
    count = 0
    for module_name in SPEC_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if not (name.startswith("lxcframe_") and inspect.isfunction(obj)):
                continue
            count += 1
            if not hasattr(obj, "lxcframe_spec"):
                problems.append(f"{module_name}.{name}: not marked @hookspec")
            if not (inspect.getdoc(obj) or "").strip():
                problems.append(f"{module_name}.{name}: no docstring")
    assert not problems, "undocumented or unmarked hooks:\n" + "\n".join(problems)
    assert count >= 20


# Copied from lxcframe/stages.py: a change to the start order must change this list too.
@pytest.mark.parametrize("stage", START_STAGES, ids=lambda s: s.name)
def test_stage_hook_is_a_hookspec_of_its_side(stage: Stage) -> None:
    module = importlib.import_module({"host": "lxcframe.hooks.host", "child": "lxcframe.hooks.child"}[stage.side])
    function = getattr(module, stage.hook, None)
    assert function is not None, f"{stage.hook} is not in {module.__name__}"
    assert hasattr(function, "lxcframe_spec"), f"{stage.hook} is not a hookspec"
    assert hasattr(Plugins(environ={}).hook, stage.hook)


def test_pyproject_entry_points_equal_builtin_plugins() -> None:
    with open(REPO / "pyproject.toml", "rb") as handle:
        pyproject = tomllib.load(handle)
    entry_points = pyproject["project"]["entry-points"]["lxcframe.plugins"]
    assert list(entry_points.items()) == list(BUILTIN_PLUGINS.items())


# --- import hygiene ------------------------------------------------------------------------------------------


def all_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue  # running it is the CLI (it calls main() and exits), not an import
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def run_python(code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LXCFRAME_")}
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, env=env, timeout=120,
        check=False, cwd=str(REPO),
    )


def test_every_module_imports_without_warnings() -> None:
    modules = all_modules()
    assert "lxcframe.plugins.core" in modules
    assert "lxcframe.cli.main" in modules
    code = textwrap.dedent(
        f"""
        import importlib, traceback
        failed = []
        for name in {modules!r}:
            try:
                importlib.import_module(name)
            except BaseException:
                failed.append(name + ":\\n" + traceback.format_exc())
        print("\\n".join(failed))
        raise SystemExit(1 if failed else 0)
        """
    )
    result = run_python(code, "-W", "error")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "code",
    [
        "import lxcframe",
        "import lxcframe.cli.main",
        "from lxcframe.cli.main import main; main(['--version'])",
    ],
)
def test_light_imports_stay_light(code: str) -> None:
    heavy = ("pyroute2", "structlog", "pluggy", "importlib.metadata")
    probe = textwrap.dedent(
        f"""
        import sys
        before = set(sys.modules)
        {code}
        loaded = set(sys.modules) - before
        print(sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in {heavy!r})))
        """
    )
    result = run_python(probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
