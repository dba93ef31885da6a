"""The cgroup placement keys (``lxc.cgroup.relative``, ``lxc.cgroup.dir*``): validation, how the cgroup
plugin reads them and the cross-key checks; the driver registry against the names known without it."""

from __future__ import annotations

import attrs
import pytest

from lxcframe.config.keys import KeyRegistry
from lxcframe.config.model import ContainerConfig, load_text
from lxcframe.errors import ConfigErrors
from lxcframe.plugins import BUILTIN_DRIVERS
from lxcframe.plugins.cgroup import settings
from lxcframe.plugins.cgroup.drivers import DRIVERS
from lxcframe.plugins.cgroup.layout import V1, V2
from lxcframe.plugins.cgroup.settings import CgroupSettings

KEYS = ("lxc.cgroup.relative", "lxc.cgroup.dir", "lxc.cgroup.dir.monitor", "lxc.cgroup.dir.container",
        "lxc.cgroup.dir.container.inner")


def handled(text: str) -> ContainerConfig:
    """The config as loaded with the cgroup plugin's placement keys declared."""
    registry = KeyRegistry()
    for spec in settings.key_specs():
        registry.add(attrs.evolve(spec, plugin="cgroup"))
    return load_text(text, registry, "c.conf")


# --- cgroup_path -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("lxc", "lxc"),
    ("a/b", "a/b"),
    ("a//b/", "a/b"),
    ("./a/./b/.", "a/b"),
    ("a..b/c.", "a..b/c."),
])
def test_cgroup_path_normalises_relative_paths(value: str, expected: str) -> None:
    assert settings.cgroup_path(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("/lxc", "expected a path relative to the base cgroup (no leading '/')"),
    ("/", "expected a path relative to the base cgroup (no leading '/')"),
    ("a/../b", "the path may not walk upwards with '..'"),
    ("..", "the path may not walk upwards with '..'"),
    ("", "expected a cgroup path"),
    ("./", "expected a cgroup path"),
    ("//", "expected a path relative to the base cgroup (no leading '/')"),
    (".//.", "expected a cgroup path"),
])
def test_cgroup_path_refuses(value: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        settings.cgroup_path(value)
    assert str(caught.value) == message


# --- the key specs and the driver registry --------------------------------------------------------


def test_key_specs_name_every_placement_key_once() -> None:
    specs = settings.key_specs()
    assert [spec.name for spec in specs] == list(KEYS)
    assert settings.PLACEMENT_KEYS == KEYS
    for spec in specs:
        assert spec.shared_with == ()
        assert not spec.multi
        assert spec.plugin == ""
        assert spec.doc.strip()


def test_key_specs_validate_each_key() -> None:
    specs = {spec.name: spec for spec in settings.key_specs()}
    assert specs["lxc.cgroup.relative"].validator("1") is True
    assert specs["lxc.cgroup.relative"].validator("0") is False
    with pytest.raises(ValueError):
        specs["lxc.cgroup.relative"].validator("yes")
    for key in KEYS[1:]:
        assert specs[key].validator("x//y") == "x/y"
        with pytest.raises(ValueError, match="no leading '/'"):
            specs[key].validator("/x")


def test_the_driver_registry_names_what_the_host_config_accepts() -> None:
    # The host config and the disable names check driver names without importing the plugin.
    assert tuple(DRIVERS) == ("v2", "v1")  # cgroup2 first: preferred for freeze and kill
    assert sorted(DRIVERS) == sorted(BUILTIN_DRIVERS["cgroup"])
    assert {name: (cls.name, cls.kind, cls.key_prefix) for name, cls in DRIVERS.items()} == {
        "v1": ("v1", V1, "lxc.cgroup."), "v2": ("v2", V2, "lxc.cgroup2.")}
    assert all(cls.purpose.strip() and cls.nothing_mounted.strip() for cls in DRIVERS.values())


# --- read_settings ---------------------------------------------------------------------------------


def test_read_settings_defaults() -> None:
    assert settings.read_settings(handled("")) == CgroupSettings()
    assert CgroupSettings() == CgroupSettings(relative=False, dir=None, dir_monitor=None, dir_container=None,
                                              dir_inner=None)


def test_read_settings_every_key() -> None:
    config = handled("lxc.cgroup.relative = 1\n"
                     "lxc.cgroup.dir.monitor = mon//m1\n"
                     "lxc.cgroup.dir.container = ./pay/c1\n"
                     "lxc.cgroup.dir.container.inner = inner\n")
    assert settings.read_settings(config) == CgroupSettings(
        relative=True, dir=None, dir_monitor="mon/m1", dir_container="pay/c1", dir_inner="inner")


def test_read_settings_dir_and_relative_zero() -> None:
    result = settings.read_settings(handled("lxc.cgroup.relative = 0\nlxc.cgroup.dir = a/b/\n"))
    assert result == CgroupSettings(relative=False, dir="a/b")
    assert result.relative is False


def test_read_settings_last_value_wins_and_empty_resets() -> None:
    config = handled("lxc.cgroup.dir = first\nlxc.cgroup.dir = second\nlxc.cgroup.relative = 1\n"
                     "lxc.cgroup.relative =\n")
    assert settings.read_settings(config) == CgroupSettings(relative=False, dir="second")
    config = handled("lxc.cgroup.dir = first\nlxc.cgroup.dir =\nlxc.cgroup.dir = third\n")
    assert settings.read_settings(config) == CgroupSettings(dir="third")


def test_a_reset_of_a_key_never_set_is_no_error() -> None:
    config = handled("lxc.cgroup.dir =\nlxc.cgroup.relative = 1\n")
    assert settings.read_settings(config) == CgroupSettings(relative=True)
    assert settings.settings_problems(config) == []


def test_handled_invalid_value_is_a_config_error() -> None:
    with pytest.raises(ConfigErrors) as caught:
        handled("lxc.cgroup.dir.monitor = a/../b\n")
    assert str(caught.value) == ("c.conf:1: lxc.cgroup.dir.monitor = 'a/../b': "
                                 "the path may not walk upwards with '..'")


# --- settings_problems -----------------------------------------------------------------------------


def test_consistent_settings_have_no_problem() -> None:
    for text in ("", "lxc.cgroup.dir = d\nlxc.cgroup.relative = 1\n",
                 "lxc.cgroup.dir.monitor = m\nlxc.cgroup.dir.container = c\n",
                 "lxc.cgroup.dir.monitor = m\nlxc.cgroup.dir.container = c\nlxc.cgroup.dir.container.inner = i\n"):
        assert settings.settings_problems(handled(text)) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("lxc.cgroup.dir = d\nlxc.cgroup.dir.monitor = m\nlxc.cgroup.dir.container = c\n",
     ["c.conf:1: lxc.cgroup.dir cannot be combined with the lxc.cgroup.dir.* keys"]),
    ("lxc.cgroup.dir.container.inner = i\nlxc.cgroup.dir = d\n",
     ["c.conf:2: lxc.cgroup.dir cannot be combined with the lxc.cgroup.dir.* keys",
      "c.conf:1: lxc.cgroup.dir.container.inner needs lxc.cgroup.dir.container and lxc.cgroup.dir.monitor"]),
    ("lxc.cgroup.relative = 1\nlxc.cgroup.dir.monitor = m\n",
     ["c.conf:2: lxc.cgroup.dir.monitor and lxc.cgroup.dir.container must be set together"]),
    ("lxc.cgroup.dir.container = c\n",
     ["c.conf:1: lxc.cgroup.dir.monitor and lxc.cgroup.dir.container must be set together"]),
    ("lxc.cgroup.dir.container = c\nlxc.cgroup.dir.container.inner = i\n",
     ["c.conf:1: lxc.cgroup.dir.monitor and lxc.cgroup.dir.container must be set together"]),
    ("lxc.cgroup.dir.monitor = m\nlxc.cgroup.dir.container.inner = i\n",
     ["c.conf:1: lxc.cgroup.dir.monitor and lxc.cgroup.dir.container must be set together",
      "c.conf:2: lxc.cgroup.dir.container.inner needs lxc.cgroup.dir.container and lxc.cgroup.dir.monitor"]),
    ("lxc.cgroup.dir = d\nlxc.cgroup.dir.container = c\n",
     ["c.conf:1: lxc.cgroup.dir cannot be combined with the lxc.cgroup.dir.* keys",
      "c.conf:2: lxc.cgroup.dir.monitor and lxc.cgroup.dir.container must be set together"]),
])
def test_settings_problems(text: str, expected: list[str]) -> None:
    assert settings.settings_problems(handled(text)) == expected


def test_a_key_reset_to_empty_is_absent_for_the_checks() -> None:
    text = "lxc.cgroup.dir = d\nlxc.cgroup.dir =\nlxc.cgroup.dir.monitor = m\nlxc.cgroup.dir.container = c\n"
    config = handled(text)
    assert settings.settings_problems(config) == []
    assert settings.read_settings(config) == CgroupSettings(dir_monitor="m", dir_container="c")
