"""The validated config (lxcframe.config.model): building it from entries, clearing, lookups, unhandled keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcframe.config.keys import KeyRegistry, KeySpec, boolean01, choice, uint, words
from lxcframe.config.model import ConfigValue, ContainerConfig, Unhandled, build_config, load_config, load_text
from lxcframe.config.parser import RawEntry
from lxcframe.errors import ConfigError, ConfigErrors


def registry() -> KeyRegistry:
    reg = KeyRegistry()
    for spec in (
        KeySpec("lxc.uts.name", plugin="core"),
        KeySpec("lxc.rootfs.managed", boolean01, plugin="core"),
        KeySpec("lxc.init.uid", uint, plugin="core"),
        KeySpec("lxc.mount.entry", multi=True, plugin="mounts"),
        KeySpec("lxc.cap.drop", words, multi=True, plugin="caps"),
        KeySpec("lxc.net", plugin="netns"),
        KeySpec("lxc.net.<N>", plugin="netns"),
        KeySpec("lxc.net.<N>.type", choice("veth", "empty"), plugin="netns"),
        KeySpec("lxc.net.<N>.ipv4.address", multi=True, plugin="netns"),
        KeySpec("lxc.net.<N>.*", plugin="netns"),
        KeySpec("lxc.cgroup2.*", multi=True, plugin="cgroup"),
    ):
        reg.add(spec)
    reg.add_inactive("lxc.seccomp.*", "seccomp", "is disabled")
    reg.add_inactive("lxc.apparmor.*", "apparmor", "is disabled", applied_by="lsm")
    return reg


def entry(key: str, value: str, line: int = 1, path: str = "/c/config") -> RawEntry:
    return RawEntry(key=key, value=value, path=path, line=line)


# --- build_config ----------------------------------------------------------------------------------------


def test_values_are_validated_and_located() -> None:
    config = build_config(
        [entry("lxc.uts.name", "web", 1), entry("lxc.rootfs.managed", "0", 2, "/c/inc.conf"),
         entry("lxc.cap.drop", "a b", 3), entry("lxc.cap.drop", "c", 4)],
        registry(), "/c/config",
    )
    assert config.path == "/c/config"
    assert config.single["lxc.uts.name"] == ConfigValue("lxc.uts.name", "web", "web", "/c/config", 1, "core")
    assert config.single["lxc.rootfs.managed"] == ConfigValue(
        "lxc.rootfs.managed", "0", False, "/c/inc.conf", 2, "core")
    assert config.multi["lxc.cap.drop"] == (
        ConfigValue("lxc.cap.drop", "a b", ("a", "b"), "/c/config", 3, "caps"),
        ConfigValue("lxc.cap.drop", "c", ("c",), "/c/config", 4, "caps"),
    )
    assert config.get("lxc.rootfs.managed") is False
    assert config.get_all("lxc.cap.drop") == (("a", "b"), ("c",))
    assert config.unhandled == ()


def test_single_key_last_one_wins() -> None:
    config = build_config([entry("lxc.uts.name", "a", 1), entry("lxc.uts.name", "b", 7)], registry(), None)
    assert config.get("lxc.uts.name") == "b"
    assert config.where("lxc.uts.name") == "/c/config:7: "


def test_every_error_is_reported_together() -> None:
    with pytest.raises(ConfigErrors) as caught:
        build_config(
            [entry("lxc.rootfs.managed", "yes", 1), entry("lxc.uts.name", "ok", 2),
             entry("lxc.uts.nmae", "x", 3), entry("lxc.net.0.type", "macvlan", 4),
             entry("no.such.key", "v", 5)],
            registry(), "/c/config",
        )
    errors = caught.value.errors
    assert [str(e) for e in errors] == [
        "/c/config:1: lxc.rootfs.managed = 'yes': expected 0 or 1",
        "/c/config:3: lxc.uts.nmae = 'x': unknown key (did you mean 'lxc.uts.name'?)",
        "/c/config:4: lxc.net.0.type = 'macvlan': expected one of veth, empty",
        "/c/config:5: no.such.key = 'v': unknown key",
    ]
    first = errors[0]
    assert (first.path, first.line, first.key, first.value) == ("/c/config", 1, "lxc.rootfs.managed", "yes")
    assert errors[0].reason == "expected 0 or 1"
    assert str(caught.value) == "; ".join(str(e) for e in errors)


def test_a_single_error_is_a_config_errors_too() -> None:
    with pytest.raises(ConfigErrors) as caught:
        build_config([entry("lxc.init.uid", "-1", 9)], registry(), None)
    assert str(caught.value) == "/c/config:9: lxc.init.uid = '-1': expected an unsigned integer"
    assert isinstance(caught.value, ConfigError)


def test_unhandled_keys_are_kept_not_refused() -> None:
    config = build_config(
        [entry("lxc.seccomp.profile", "/p", 2), entry("lxc.apparmor.profile", "unconfined", 3)],
        registry(), "/c/config",
    )
    assert config.unhandled == (
        Unhandled("lxc.seccomp.profile", "/p", "/c/config", 2, "seccomp", "is disabled", ""),
        Unhandled("lxc.apparmor.profile", "unconfined", "/c/config", 3, "apparmor", "is disabled", "lsm"),
    )
    assert dict(config.single) == {}
    assert list(config.keys()) == []


def test_empty_value_clears_the_key_and_everything_below() -> None:
    config = build_config(
        [
            entry("lxc.net.0.type", "veth"),
            entry("lxc.net.0.ipv4.address", "192.0.2.1/24"),
            entry("lxc.net.1.type", "empty"),
            entry("lxc.net.10.type", "empty"),
            entry("lxc.mount.entry", "a b c d"),
            entry("lxc.cgroup2.memory.max", "1G"),
            entry("lxc.net.1", ""),
            entry("lxc.mount.entry", ""),
            entry("lxc.mount.entry", "e f g h"),
        ],
        registry(), None,
    )
    assert sorted(config.keys()) == [
        "lxc.cgroup2.memory.max", "lxc.mount.entry", "lxc.net.0.ipv4.address", "lxc.net.0.type", "lxc.net.10.type",
    ]
    assert config.raw("lxc.mount.entry") == "e f g h"


def test_clearing_everything() -> None:
    config = build_config(
        [entry("lxc.net.0.type", "veth"), entry("lxc.net.0.ipv4.address", "192.0.2.1/24"),
         entry("lxc.uts.name", "x"), entry("lxc.net", "")],
        registry(), None,
    )
    assert list(config.keys()) == ["lxc.uts.name"]
    assert "lxc.net.0.ipv4.address" not in config.multi


def test_clearing_an_empty_multi_key_leaves_no_entry() -> None:
    config = build_config([entry("lxc.mount.entry", "a b c d"), entry("lxc.mount.entry", "")], registry(), None)
    assert dict(config.multi) == {}
    assert config.located("lxc.mount.entry") is None


# --- ContainerConfig -------------------------------------------------------------------------------------


def sample() -> ContainerConfig:
    text = (
        "lxc.uts.name = web\n"
        "lxc.net.0.type = veth\n"
        "lxc.net.0.ipv4.address = 192.0.2.1/24\n"
        "lxc.net.0.ipv4.address = 192.0.2.2/24\n"
        "lxc.net.0.ipv4.address = 192.0.2.3/24\n"
        "lxc.net.2.type = empty\n"
        "lxc.net.10.name = eth10\n"
        "lxc.cgroup2.memory.max = 1G\n"
    )
    return load_text(text, registry(), "/c/config")


def test_get_with_default() -> None:
    config = sample()
    assert config.get("lxc.uts.name") == "web"
    assert config.get("lxc.init.uid") is None
    assert config.get("lxc.init.uid", 7) == 7
    # A multi key is not a single one.
    assert config.get("lxc.cgroup2.memory.max", "none") == "none"
    assert config.get_all("lxc.uts.name") == ()


def test_raw_gives_multi_values_one_per_line() -> None:
    config = sample()
    assert config.raw("lxc.uts.name") == "web"
    assert config.raw("lxc.net.0.ipv4.address") == "192.0.2.1/24\n192.0.2.2/24\n192.0.2.3/24"
    assert config.raw("lxc.mount.entry") is None


def test_located_and_where() -> None:
    config = sample()
    assert config.located("lxc.uts.name") == ConfigValue("lxc.uts.name", "web", "web", "/c/config", 1, "core")
    assert config.located("lxc.net.0.ipv4.address") == ConfigValue(
        "lxc.net.0.ipv4.address", "192.0.2.3/24", "192.0.2.3/24", "/c/config", 5, "netns")
    assert config.located("lxc.mount.entry") is None
    assert config.where("lxc.net.0.ipv4.address") == "/c/config:5: "
    assert config.where("lxc.net.2.type") == "/c/config:6: "
    assert config.where("lxc.mount.entry") == "/c/config: "
    assert ContainerConfig(None, {}, {}).where("lxc.mount.entry") == ""


def test_located_with_an_empty_multi_list() -> None:
    config = ContainerConfig("/c/config", {}, {"lxc.mount.entry": ()})
    assert config.located("lxc.mount.entry") is None
    assert config.where("lxc.mount.entry") == "/c/config: "


def test_keys_keys_under_and_indexes() -> None:
    config = sample()
    assert list(config.keys()) == [
        "lxc.uts.name", "lxc.net.0.type", "lxc.net.2.type", "lxc.net.10.name",
        "lxc.net.0.ipv4.address", "lxc.cgroup2.memory.max",
    ]
    assert config.keys_under("lxc.net.") == [
        "lxc.net.0.ipv4.address", "lxc.net.0.type", "lxc.net.10.name", "lxc.net.2.type",
    ]
    assert config.keys_under("lxc.nope.") == []
    assert config.indexes("lxc.net.") == [0, 2, 10]
    assert config.indexes("lxc.cgroup2.") == []
    # The prefix is literal text, not a regular expression.
    assert config.indexes("lxc.net") == []
    assert config.indexes("lxc.ne.") == []
    assert config.indexes("lxc+net.") == []


def test_config_is_read_only() -> None:
    config = sample()
    with pytest.raises(TypeError):
        config.single["lxc.uts.name"] = config.single["lxc.uts.name"]  # type: ignore[index]


# --- unhandled keys --------------------------------------------------------------------------------------


def test_unhandled_describe_and_error() -> None:
    off = Unhandled("lxc.seccomp.profile", "/p", "/c/config", 3, "seccomp", "is disabled")
    shared = Unhandled("lxc.apparmor.profile", "x", "/c/inc", 4, "apparmor", "is not installed", "lsm")
    assert off.describe() == "/c/config:3: lxc.seccomp.profile: handled by plugin 'seccomp', which is disabled"
    assert shared.describe() == ("/c/inc:4: lxc.apparmor.profile: handled by plugin 'apparmor', which is not "
                                 "installed (applied by plugin 'lsm')")
    error = off.as_error()
    assert str(error) == ("/c/config:3: lxc.seccomp.profile: handled by plugin 'seccomp', which is disabled: "
                          "the container would run without it")
    assert (error.path, error.line, error.key, error.value) == ("/c/config", 3, "lxc.seccomp.profile", None)
    assert str(off.as_error(" (set X to start anyway)")).endswith("would run without it (set X to start anyway)")
    # No plugin handles the key: the reason alone, no "plugin ''".
    lxc_only = Unhandled("lxc.sched.core", "1", "/c/config", 5, "", "an LXC key lxcframe does not support yet")
    assert lxc_only.describe() == "/c/config:5: lxc.sched.core: an LXC key lxcframe does not support yet"
    assert str(lxc_only.as_error()) == ("/c/config:5: lxc.sched.core: an LXC key lxcframe does not support yet: "
                                        "the container would run without it")


def test_refuse_unhandled_lists_every_key_not_applied_elsewhere() -> None:
    text = ("lxc.seccomp.profile = /p\n"
            "lxc.apparmor.profile = unconfined\n"
            "lxc.seccomp.allow_nesting = 1\n")
    config = load_text(text, registry(), "/c/config")
    with pytest.raises(ConfigErrors) as caught:
        config.refuse_unhandled(" (opt out)")
    assert [str(e) for e in caught.value.errors] == [
        "/c/config:1: lxc.seccomp.profile: handled by plugin 'seccomp', which is disabled: "
        "the container would run without it (opt out)",
        "/c/config:3: lxc.seccomp.allow_nesting: handled by plugin 'seccomp', which is disabled: "
        "the container would run without it (opt out)",
    ]
    with pytest.raises(ConfigErrors) as caught:
        config.refuse_unhandled()
    assert str(caught.value.errors[0]).endswith("would run without it")


def test_refuse_unhandled_passes_when_applied_or_none() -> None:
    load_text("lxc.apparmor.profile = unconfined\n", registry()).refuse_unhandled()
    load_text("lxc.uts.name = a\n", registry()).refuse_unhandled()


# --- loading ---------------------------------------------------------------------------------------------


def test_load_config_applies_overrides_last(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("lxc.uts.name = file\nlxc.mount.entry = a b c d\n")
    config = load_config(str(path), registry(), [("lxc.uts.name", "over"), ("lxc.mount.entry", "e f g h")])
    assert config.single["lxc.uts.name"] == ConfigValue("lxc.uts.name", "over", "over", "<override>", 1, "core")
    assert [(v.raw, v.path, v.line) for v in config.multi["lxc.mount.entry"]] == [
        ("a b c d", str(path), 2), ("e f g h", "<override>", 2),
    ]
    assert config.path == str(path)
    assert load_config(str(path), registry()).get("lxc.uts.name") == "file"


def test_load_config_override_errors_are_located(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("")
    with pytest.raises(ConfigErrors) as caught:
        load_config(str(path), registry(), [("lxc.uts.name", "a"), ("lxc.rootfs.managed", "2")])
    assert str(caught.value) == "<override>:2: lxc.rootfs.managed = '2': expected 0 or 1"


def test_load_text_default_path() -> None:
    config = load_text("lxc.uts.name = a\n", registry())
    assert config.path == "<string>"
    assert config.where("lxc.uts.name") == "<string>:1: "
