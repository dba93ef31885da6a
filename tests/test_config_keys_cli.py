"""``lxcframe config keys``: every key with its plugin and doc; and the docs the builtins declare."""

from __future__ import annotations

import importlib
import json

import pytest

from lxcframe.config.keys import KeySpec
from lxcframe.plugins import BUILTIN_PLUGINS

from .conftest import run_cli


def declared(plugin: str) -> list[KeySpec]:
    """What a builtin plugin's module declares, read from the module itself rather than the registry."""
    module = importlib.import_module(BUILTIN_PLUGINS[plugin])
    declare = getattr(module, "lxcframe_config_keys", None)
    return list(declare()) if declare is not None else []


def enabled_plugins(env: dict[str, str], *options: str) -> set[str]:
    result = run_cli(*options, "plugins", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    return {record["name"] for record in json.loads(result.stdout) if record["state"] == "enabled"}


def test_json_lists_every_declared_key(cli_env: dict[str, str]) -> None:
    result = run_cli("config", "keys", "--format", "json", env=cli_env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows == sorted(rows, key=lambda row: (row["key"], row["plugin"]))
    enabled = enabled_plugins(cli_env) & set(BUILTIN_PLUGINS)
    assert "caps" in enabled and "core" in enabled
    for plugin in enabled:
        expected = sorted((s.name, s.multi, s.doc) for s in declared(plugin))
        listed = sorted((r["key"], r["multi"], r["doc"]) for r in rows if r["plugin"] == plugin)
        assert listed == expected, plugin
        assert all(r["state"] == "enabled" for r in rows if r["plugin"] == plugin)


def test_text_one_line_per_key(cli_env: dict[str, str]) -> None:
    result = run_cli("config", "keys", env=cli_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KEY", "PLUGIN", "DOC"]
    by_key = {line.split()[0]: line.split(None, 2) for line in lines[1:]}
    assert by_key["lxc.cap.drop"] == ["lxc.cap.drop", "caps", "capabilities removed from the bounding set [repeatable]"]
    assert by_key["lxc.no_new_privs"] == ["lxc.no_new_privs", "caps", "set no_new_privs before executing init"]


def test_one_plugin(cli_env: dict[str, str]) -> None:
    result = run_cli("config", "keys", "--plugin", "caps", "--format", "json", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert [(r["key"], r["plugin"], r["doc"]) for r in json.loads(result.stdout)] == sorted(
        (s.name, "caps", s.doc) for s in declared("caps"))
    # A plugin that declares no key lists nothing, and that is no error.
    result = run_cli("config", "keys", "--plugin", "templates", "--format", "json", env=cli_env)
    assert (result.returncode, json.loads(result.stdout)) == (0, [])


def test_disabled_plugin_keys_say_so(cli_env: dict[str, str]) -> None:
    result = run_cli("-p", "no:caps", "config", "keys", "--plugin", "caps", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        f"{s.name.ljust(16)}  caps    (plugin is disabled on this host)" for s in sorted(declared("caps"),
                                                                                key=lambda s: s.name)
    ]


def test_unknown_plugin_is_an_error_naming_it(cli_env: dict[str, str]) -> None:
    result = run_cli("config", "keys", "--plugin", "cap", env=cli_env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == ("lxcframe: error: config keys --plugin cap: no plugin named 'cap' "
                             "(did you mean 'caps'?)\n")


# --- what the builtins declare ------------------------------------------------------------------


@pytest.mark.parametrize("plugin", sorted(BUILTIN_PLUGINS))
def test_every_builtin_key_has_a_one_line_doc(plugin: str) -> None:
    for spec in declared(plugin):
        assert spec.doc.strip(), f"{plugin}: {spec.name} has no doc"
        assert "\n" not in spec.doc and spec.doc == spec.doc.strip(), f"{plugin}: {spec.name}: {spec.doc!r}"


@pytest.mark.parametrize("plugin", sorted(BUILTIN_PLUGINS))
def test_builtin_keys_live_in_lxc_namespace(plugin: str) -> None:
    """``lxc.*`` is the builtins' (LXC's keys); third-party plugins name theirs after themselves
    (``lxcframe.testing.key_name_problems``)."""
    assert [spec.name for spec in declared(plugin) if not spec.name.startswith("lxc.")] == []
