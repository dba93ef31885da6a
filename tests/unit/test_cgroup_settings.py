"""The shared cgroup placement keys (``lxc.cgroup.relative``, ``lxc.cgroup.dir*``): validation, who
declares them, how either cgroup plugin reads them (handled or kept unhandled) and the cross-key checks."""

from __future__ import annotations

import attrs
import pytest

from lxcframe.cgroups import layout as layout_module
from lxcframe.cgroups import settings
from lxcframe.cgroups.layout import V1, V2, Hierarchy, Layout
from lxcframe.cgroups.settings import CgroupSettings
from lxcframe.config.keys import KeyRegistry
from lxcframe.config.model import ContainerConfig, load_text
from lxcframe.errors import ConfigErrors

KEYS = ("lxc.cgroup.relative", "lxc.cgroup.dir", "lxc.cgroup.dir.monitor", "lxc.cgroup.dir.container",
        "lxc.cgroup.dir.container.inner")


def handled(text: str, plugin: str = "cgroup2") -> ContainerConfig:
    """The config as loaded when ``plugin`` (enabled) declared the shared keys."""
    registry = KeyRegistry()
    for spec in settings.shared_key_specs():
        registry.add(attrs.evolve(spec, plugin=plugin))
    return load_text(text, registry, "c.conf")


def unhandled(text: str, declarer: str = "cgroup1", reader: str = "cgroup2") -> ContainerConfig:
    """The config as loaded when the declaring plugin is disabled and the other one applies the keys."""
    registry = KeyRegistry()
    for spec in settings.shared_key_specs():
        registry.add_inactive(spec.name, declarer, "is disabled", applied_by=reader)
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


# --- the key specs and who declares them -------------------------------------------------------------


def test_shared_key_specs_name_every_key_once_shared_by_both_plugins() -> None:
    specs = settings.shared_key_specs()
    assert [spec.name for spec in specs] == list(KEYS)
    assert settings.SHARED_KEYS == KEYS
    for spec in specs:
        assert spec.shared_with == ("cgroup1", "cgroup2")
        assert not spec.multi
        assert spec.plugin == ""
        assert spec.doc.strip()


def test_shared_key_specs_validate_each_key() -> None:
    specs = {spec.name: spec for spec in settings.shared_key_specs()}
    assert specs["lxc.cgroup.relative"].validator("1") is True
    assert specs["lxc.cgroup.relative"].validator("0") is False
    with pytest.raises(ValueError):
        specs["lxc.cgroup.relative"].validator("yes")
    for key in KEYS[1:]:
        assert specs[key].validator("x//y") == "x/y"
        with pytest.raises(ValueError, match="no leading '/'"):
            specs[key].validator("/x")


def test_declared_by() -> None:
    assert settings.declared_by(True) == "cgroup1"
    assert settings.declared_by(False) == "cgroup2"


def _layout(*kinds: str) -> Layout:
    return Layout("hybrid" if len(kinds) > 1 else "legacy" if kinds == (V1,) else "unified",
                  tuple(Hierarchy(kind, f"/sys/fs/cgroup/{i}", ("cpu",) if kind == V1 else ())
                        for i, kind in enumerate(kinds)))


@pytest.mark.parametrize(("kinds", "declarer"), [
    ((V2,), "cgroup2"),
    ((V1,), "cgroup1"),
    ((V1, V2), "cgroup1"),
    ((V1, V1), "cgroup1"),
    ((), "cgroup2"),
])
def test_declares_shared_follows_the_layout(monkeypatch: pytest.MonkeyPatch, kinds: tuple[str, ...],
                                             declarer: str) -> None:
    monkeypatch.setattr(layout_module, "current_layout", lambda: _layout(*kinds))
    other = "cgroup1" if declarer == "cgroup2" else "cgroup2"
    assert settings.declares_shared(declarer) is True
    assert settings.declares_shared(other) is False


def test_declares_shared_without_a_readable_mount_table(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable() -> Layout:
        raise PermissionError(13, "Permission denied", "/proc/self/mountinfo")

    monkeypatch.setattr(layout_module, "current_layout", unreadable)
    assert settings.declares_shared("cgroup2") is True
    assert settings.declares_shared("cgroup1") is False


# --- read_settings ---------------------------------------------------------------------------------


def test_read_settings_defaults() -> None:
    assert settings.read_settings(handled("")) == CgroupSettings()
    assert settings.read_settings(unhandled("")) == CgroupSettings()
    assert CgroupSettings() == CgroupSettings(relative=False, dir=None, dir_monitor=None, dir_container=None,
                                              dir_inner=None)


@pytest.mark.parametrize("load", [handled, unhandled])
def test_read_settings_every_key(load) -> None:  # type: ignore[no-untyped-def]
    config = load("lxc.cgroup.relative = 1\n"
                  "lxc.cgroup.dir.monitor = mon//m1\n"
                  "lxc.cgroup.dir.container = ./pay/c1\n"
                  "lxc.cgroup.dir.container.inner = inner\n")
    assert settings.read_settings(config) == CgroupSettings(
        relative=True, dir=None, dir_monitor="mon/m1", dir_container="pay/c1", dir_inner="inner")


@pytest.mark.parametrize("load", [handled, unhandled])
def test_read_settings_dir_and_relative_zero(load) -> None:  # type: ignore[no-untyped-def]
    config = load("lxc.cgroup.relative = 0\nlxc.cgroup.dir = a/b/\n")
    result = settings.read_settings(config)
    assert result == CgroupSettings(relative=False, dir="a/b")
    assert result.relative is False


@pytest.mark.parametrize("load", [handled, unhandled])
def test_read_settings_last_value_wins_and_empty_resets(load) -> None:  # type: ignore[no-untyped-def]
    config = load("lxc.cgroup.dir = first\nlxc.cgroup.dir = second\nlxc.cgroup.relative = 1\n"
                  "lxc.cgroup.relative =\n")
    assert settings.read_settings(config) == CgroupSettings(relative=False, dir="second")
    config = load("lxc.cgroup.dir = first\nlxc.cgroup.dir =\nlxc.cgroup.dir = third\n")
    assert settings.read_settings(config) == CgroupSettings(dir="third")


def test_unhandled_reset_of_a_key_never_set_is_no_error() -> None:
    config = unhandled("lxc.cgroup.dir =\nlxc.cgroup.relative = 1\n")
    assert settings.read_settings(config) == CgroupSettings(relative=True)
    assert settings.settings_problems(config, "cgroup2") == []


def test_unhandled_invalid_value_is_skipped_when_read_and_reported_by_settings_problems() -> None:
    config = unhandled("lxc.cgroup.dir = ok\nlxc.cgroup.dir = /abs\nlxc.cgroup.relative = 2\n")
    # A bad later line does not replace the good value before it.
    assert settings.read_settings(config) == CgroupSettings(dir="ok")
    assert settings.settings_problems(config, "cgroup1") == [
        "c.conf:2: lxc.cgroup.dir = '/abs': expected a path relative to the base cgroup (no leading '/')",
        "c.conf:3: lxc.cgroup.relative = '2': expected 0 or 1",
    ]


def test_unhandled_keeps_other_keys_out() -> None:
    registry = KeyRegistry()
    registry.add_inactive("lxc.cgroup.*", "cgroup1", "is disabled")
    for spec in settings.shared_key_specs():
        registry.add_inactive(spec.name, "cgroup1", "is disabled", applied_by="cgroup2")
    config = load_text("lxc.cgroup.memory.limit_in_bytes = /bad\nlxc.cgroup.dir = d\n", registry, "c.conf")
    assert [item.key for item in config.unhandled] == ["lxc.cgroup.memory.limit_in_bytes", "lxc.cgroup.dir"]
    assert settings.read_settings(config) == CgroupSettings(dir="d")
    assert settings.settings_problems(config, "cgroup2") == []


def test_handled_invalid_value_is_a_config_error() -> None:
    with pytest.raises(ConfigErrors) as caught:
        handled("lxc.cgroup.dir.monitor = a/../b\n")
    assert str(caught.value) == ("c.conf:1: lxc.cgroup.dir.monitor = 'a/../b': "
                                 "the path may not walk upwards with '..'")


# --- settings_problems -----------------------------------------------------------------------------


@pytest.mark.parametrize("load", [handled, unhandled])
def test_consistent_settings_have_no_problem(load) -> None:  # type: ignore[no-untyped-def]
    for text in ("", "lxc.cgroup.dir = d\nlxc.cgroup.relative = 1\n",
                 "lxc.cgroup.dir.monitor = m\nlxc.cgroup.dir.container = c\n",
                 "lxc.cgroup.dir.monitor = m\nlxc.cgroup.dir.container = c\nlxc.cgroup.dir.container.inner = i\n"):
        assert settings.settings_problems(load(text), "cgroup2") == []


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
@pytest.mark.parametrize("load", [handled, unhandled])
def test_settings_problems(load, text: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert settings.settings_problems(load(text), "cgroup2") == expected


def test_problems_are_reported_by_the_plugin_that_handled_the_keys_only() -> None:
    text = "lxc.cgroup.dir.monitor = m\n"
    expected = ["c.conf:1: lxc.cgroup.dir.monitor and lxc.cgroup.dir.container must be set together"]
    assert settings.settings_problems(handled(text, plugin="cgroup1"), "cgroup1") == expected
    assert settings.settings_problems(handled(text, plugin="cgroup1"), "cgroup2") == []
    assert settings.settings_problems(handled(text, plugin="cgroup2"), "cgroup1") == []
    # Unhandled keys have no owner: whichever plugin asks reports them.
    assert settings.settings_problems(unhandled(text), "cgroup1") == expected
    assert settings.settings_problems(unhandled(text), "cgroup2") == expected


def test_a_key_reset_to_empty_is_absent_for_the_checks() -> None:
    text = "lxc.cgroup.dir = d\nlxc.cgroup.dir =\nlxc.cgroup.dir.monitor = m\nlxc.cgroup.dir.container = c\n"
    for config in (handled(text), unhandled(text)):
        assert settings.settings_problems(config, "cgroup2") == []
        assert settings.read_settings(config) == CgroupSettings(dir_monitor="m", dir_container="c")
