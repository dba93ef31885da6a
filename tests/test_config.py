"""Tests of LXC config parsing (lxcframe.config.parser), the validated model (lxcframe.config.model),
the key registry (lxcframe.config.keys) and the comment-keeping writer (lxcframe.config.writer)."""

from __future__ import annotations

import glob
import os
import re
import stat
import tempfile
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lxcframe.config.keys import KeyRegistry, KeySpec, boolean01, choice, words
from lxcframe.config.model import ConfigValue, ContainerConfig, Unhandled, load_config, load_text
from lxcframe.config.parser import RawEntry, parse_line, read_entries
from lxcframe.config.writer import set_item
from lxcframe.errors import ConfigError, ConfigErrors
from lxcframe.plugin_manager import Plugins

LXC_CONFIG_DIR = "/usr/share/lxc/config"
STOCK_CONFIGS = sorted(glob.glob(os.path.join(LXC_CONFIG_DIR, "*.conf")))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_registry() -> KeyRegistry:
    """A registry of our own, so pattern and clearing tests do not depend on what the plugins declare."""
    registry = KeyRegistry()
    for spec in (
        KeySpec("lxc.uts.name", plugin="t"),
        KeySpec("lxc.rootfs.managed", boolean01, plugin="t"),
        KeySpec("lxc.mount.entry", multi=True, plugin="t"),
        KeySpec("lxc.cap.drop", words, multi=True, plugin="t"),
        KeySpec("lxc.net", plugin="t"),
        KeySpec("lxc.net.<N>.type", choice("veth", "empty", "phys"), plugin="t"),
        KeySpec("lxc.net.<N>.link", plugin="t"),
        KeySpec("lxc.net.<N>.ipv4.address", multi=True, plugin="t"),
        KeySpec("lxc.net.<N>.*", plugin="t"),
        KeySpec("lxc.cgroup2.*", multi=True, plugin="t"),
    ):
        registry.add(spec)
    return registry



@pytest.fixture(scope="module")
def real_registry() -> KeyRegistry:
    return Plugins(environ={}).key_registry()


# --- parse_line ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("lxc.uts.name = web01", "lxc.uts.name", "web01"),
        ("lxc.uts.name=web01", "lxc.uts.name", "web01"),
        ("   lxc.uts.name   =    web01   ", "lxc.uts.name", "web01"),
        ("\tlxc.uts.name\t=\tweb01\t", "lxc.uts.name", "web01"),
        ("lxc.uts.name =", "lxc.uts.name", ""),
        ("lxc.environment = PATH=/bin:/usr/bin", "lxc.environment", "PATH=/bin:/usr/bin"),
        ('lxc.uts.name = "web 01"', "lxc.uts.name", "web 01"),
        ("lxc.uts.name = 'web 01'", "lxc.uts.name", "web 01"),
        ('lxc.uts.name = ""', "lxc.uts.name", ""),
        # Quotes are dropped only when they match at both ends.
        ("lxc.uts.name = \"web'", "lxc.uts.name", "\"web'"),
        ('lxc.uts.name = "', "lxc.uts.name", '"'),
        ('lxc.uts.name = a"b"', "lxc.uts.name", 'a"b"'),
        # LXC has no trailing comments: '#' after the value is part of the value.
        ("lxc.uts.name = web # the web server", "lxc.uts.name", "web # the web server"),
    ],
)
def test_parse_line_key_value(text: str, key: str, value: str) -> None:
    entry = parse_line(text, "/c/config", 7)
    assert entry == RawEntry(key=key, value=value, path="/c/config", line=7)


@pytest.mark.parametrize("text", ["", "   ", "\t", "# comment", "   # indented comment", "#lxc.uts.name = x"])
def test_parse_line_blank_and_comment(text: str) -> None:
    assert parse_line(text, "/c/config", 1) is None


def test_line_without_equals_names_file_and_line(tmp_path: Path) -> None:
    config = write(tmp_path / "config", "# header\nlxc.uts.name = a\nlxc.rootfs.path /srv/rootfs\n")
    with pytest.raises(ConfigError) as info:
        list(read_entries(str(config)))
    err = info.value
    assert err.path == str(config)
    assert err.line == 3
    assert str(err).startswith(f"{config}:3: ")
    assert "key = value" in str(err)


def test_malformed_key_is_an_error(tmp_path: Path) -> None:
    config = write(tmp_path / "config", "lxc uts name = a\n")
    with pytest.raises(ConfigError, match="malformed key") as info:
        list(read_entries(str(config)))
    assert info.value.line == 1
    assert str(info.value).startswith(f"{config}:1: ")


def test_read_entries_locates_every_entry(tmp_path: Path) -> None:
    config = write(
        tmp_path / "config",
        "# comment\n\nlxc.uts.name = a\n   \n  # another\nlxc.mount.entry = /a a none bind 0 0\n",
    )
    entries = list(read_entries(str(config)))
    assert entries == [
        RawEntry("lxc.uts.name", "a", str(config), 3),
        RawEntry("lxc.mount.entry", "/a a none bind 0 0", str(config), 6),
    ]


# --- includes ----------------------------------------------------------------------------------------


def test_include_file_expands_in_place(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.conf", "lxc.mount.entry = /b b none bind 0 0\nlxc.uts.name = inner\n")
    main = write(
        tmp_path / "config",
        f"lxc.uts.name = before\nlxc.include = {inc}\nlxc.mount.entry = /c c none bind 0 0\n",
    )
    entries = list(read_entries(str(main)))
    assert [(e.key, e.value, e.path, e.line) for e in entries] == [
        ("lxc.uts.name", "before", str(main), 1),
        ("lxc.mount.entry", "/b b none bind 0 0", str(inc), 1),
        ("lxc.uts.name", "inner", str(inc), 2),
        ("lxc.mount.entry", "/c c none bind 0 0", str(main), 3),
    ]
    config = load_config(str(main), make_registry())
    # The include came after "before", so its value wins; the multi key keeps file order.
    assert config.get("lxc.uts.name") == "inner"
    assert config.get_all("lxc.mount.entry") == ("/b b none bind 0 0", "/c c none bind 0 0")


def test_include_directory_reads_only_conf_files_sorted(tmp_path: Path) -> None:
    confd = tmp_path / "conf.d"
    write(confd / "20-second.conf", "lxc.mount.entry = /2 two none bind 0 0\n")
    write(confd / "10-first.conf", "lxc.mount.entry = /1 one none bind 0 0\n")
    write(confd / "30-third.conf", "lxc.mount.entry = /3 three none bind 0 0\n")
    write(confd / "README", "this is not a config file\n")
    write(confd / "05-old.conf.bak", "lxc.mount.entry = /bak bak none bind 0 0\n")
    write(confd / "00-notes.txt", "no = thanks\n")
    main = write(tmp_path / "config", f"lxc.include = {confd}\n")
    entries = list(read_entries(str(main)))
    assert [os.path.basename(e.path) for e in entries] == ["10-first.conf", "20-second.conf", "30-third.conf"]
    assert [e.value.split()[0] for e in entries] == ["/1", "/2", "/3"]


def test_include_directory_with_trailing_slash(tmp_path: Path) -> None:
    confd = tmp_path / "conf.d"
    write(confd / "a.conf", "lxc.uts.name = from-dir\n")
    main = write(tmp_path / "config", f"lxc.include = {confd}/\n")
    assert load_config(str(main), make_registry()).get("lxc.uts.name") == "from-dir"


def test_include_missing_directory_with_trailing_slash_adds_nothing(tmp_path: Path) -> None:
    # LXC 5.0 accepts this (Debian's userns.conf includes userns.conf.d/, which no package ships).
    main = write(tmp_path / "config", f"lxc.uts.name = a\nlxc.include = {tmp_path}/nonexistent.d/\n")
    assert [e.key for e in read_entries(str(main))] == ["lxc.uts.name"]


def test_include_relative_to_including_file_not_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf"
    write(conf / "config", "lxc.include = parts/one.conf\n")
    write(conf / "parts" / "one.conf", "lxc.mount.entry = /one one none bind 0 0\nlxc.include = two.conf\n")
    write(conf / "parts" / "two.conf", "lxc.uts.name = right\n")
    # Decoys where a cwd-relative lookup would land.
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "parts" / "one.conf", "lxc.uts.name = wrong-one\n")
    write(elsewhere / "two.conf", "lxc.uts.name = wrong-two\n")
    monkeypatch.chdir(elsewhere)
    entries = list(read_entries(str(conf / "config")))
    assert [(e.key, e.value) for e in entries] == [
        ("lxc.mount.entry", "/one one none bind 0 0"),
        ("lxc.uts.name", "right"),
    ]
    assert entries[1].path == str(conf / "parts" / "two.conf")


def test_include_loop_names_the_chain(tmp_path: Path) -> None:
    a = tmp_path / "a.conf"
    b = tmp_path / "b.conf"
    write(a, "lxc.uts.name = a\nlxc.include = b.conf\n")
    write(b, "# b\nlxc.mount.entry = /b b none bind 0 0\nlxc.include = a.conf\n")
    with pytest.raises(ConfigError) as info:
        list(read_entries(str(a)))
    err = info.value
    real_a, real_b = os.path.realpath(a), os.path.realpath(b)
    assert "include loop" in str(err)
    assert f"{real_a} -> {real_b} -> {real_a}" in str(err)
    # Located at the include line that closes the loop.
    assert (err.path, err.line, err.key) == (str(b), 3, "lxc.include")


def test_include_of_itself_is_a_loop(tmp_path: Path) -> None:
    a = write(tmp_path / "a.conf", "lxc.include = a.conf\n")
    with pytest.raises(ConfigError, match="include loop"):
        list(read_entries(str(a)))


def test_include_same_file_twice_is_not_a_loop(tmp_path: Path) -> None:
    write(tmp_path / "common.conf", "lxc.mount.entry = /c c none bind 0 0\n")
    main = write(tmp_path / "config", "lxc.include = common.conf\nlxc.include = common.conf\n")
    assert len(list(read_entries(str(main)))) == 2


def test_missing_include_names_including_file_line_and_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf"
    main = write(tmp_path / "config", f"lxc.uts.name = a\n\nlxc.include = {missing}\n")
    with pytest.raises(ConfigError) as info:
        list(read_entries(str(main)))
    err = info.value
    assert (err.path, err.line, err.key, err.value) == (str(main), 3, "lxc.include", str(missing))
    assert str(err).startswith(f"{main}:3: lxc.include")
    assert str(missing) in str(err)
    assert "no such file" in str(err)


def test_missing_top_level_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file") as info:
        list(read_entries(str(tmp_path / "absent")))
    assert info.value.path == str(tmp_path / "absent")


# We run as root, and root reads a chmod 000 file anyway; so "unreadable" is tested with files that no
# one can read as a config: a non-UTF-8 file, and a directory where an included file should be.


def test_non_utf8_include_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.conf"
    bad.write_bytes("lxc.uts.name = caf\u00e9\n".encode("latin-1"))
    main = write(tmp_path / "config", f"lxc.include = {bad}\n")
    with pytest.raises(ConfigError) as info:
        list(read_entries(str(main)))
    err = info.value
    assert (err.path, err.line, err.key) == (str(main), 1, "lxc.include")
    assert "not UTF-8" in str(err)
    assert str(bad) in str(err)


def test_directory_in_place_of_included_file_is_reported(tmp_path: Path) -> None:
    confd = tmp_path / "conf.d"
    write(confd / "10-ok.conf", "lxc.uts.name = ok\n")
    (confd / "20-broken.conf").mkdir()
    main = write(tmp_path / "config", f"lxc.include = {confd}\n")
    with pytest.raises(ConfigError, match="is a directory") as info:
        list(read_entries(str(main)))
    assert info.value.path == str(main)
    assert str(confd / "20-broken.conf") in str(info.value)


def test_directory_as_top_level_config_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        list(read_entries(str(tmp_path)))


# --- key registry --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("lxc.net.0.type", "lxc.net.<N>.type"),
        ("lxc.net.7.type", "lxc.net.<N>.type"),
        ("lxc.net.12.link", "lxc.net.<N>.link"),
        ("lxc.net.3.ipv4.address", "lxc.net.<N>.ipv4.address"),
        # The more specific (longer) pattern wins over the namespace pattern.
        ("lxc.net.0.flags", "lxc.net.<N>.*"),
        ("lxc.net.0.ipv4.gateway", "lxc.net.<N>.*"),
        ("lxc.cgroup2.memory.max", "lxc.cgroup2.*"),
        ("lxc.net", "lxc.net"),
        # Leading zeros, non-decimal indexes, missing or extra parts do not match.
        ("lxc.net.01.type", None),
        ("lxc.net.x.type", None),
        ("lxc.net..type", None),
        ("lxc.net.-1.type", None),
        ("lxc.net.type", None),
        ("lxc.cgroup2.", None),
        ("lxc.cgroup2", None),
        ("xlxc.net.0.type", None),
    ],
)
def test_registry_lookup_patterns(key: str, expected: str | None) -> None:
    spec = make_registry().lookup(key)
    assert (spec.name if spec else None) == expected


def test_registry_exact_beats_pattern() -> None:
    registry = make_registry()
    registry.add(KeySpec("lxc.net.0.type", plugin="special"))
    assert registry.lookup("lxc.net.0.type").plugin == "special"  # type: ignore[union-attr]
    assert registry.lookup("lxc.net.1.type").name == "lxc.net.<N>.type"  # type: ignore[union-attr]


def test_registry_rejects_a_key_declared_twice() -> None:
    registry = make_registry()
    with pytest.raises(ValueError, match=re.escape("'lxc.net.<N>.type'")) as info:
        registry.add(KeySpec("lxc.net.<N>.type", plugin="other"))
    assert "'t'" in str(info.value)
    assert "'other'" in str(info.value)


def test_registry_suggest() -> None:
    registry = make_registry()
    assert registry.suggest("lxc.uts.nmae") == "lxc.uts.name"
    assert registry.suggest("lxc.net.0.tpye") == "lxc.net.0.type"
    assert registry.suggest("lxc.completely.different.thing") is None


def test_indexed_keys_in_a_config() -> None:
    text = "lxc.net.0.type = veth\nlxc.net.0.link = br0\nlxc.net.1.type = empty\nlxc.net.0.ipv4.address = 10.0.0.2/24\n"
    config = load_text(text, make_registry())
    assert config.get("lxc.net.0.type") == "veth"
    assert config.get("lxc.net.1.type") == "empty"
    assert config.indexes("lxc.net.") == [0, 1]
    assert config.keys_under("lxc.net.0.") == ["lxc.net.0.ipv4.address", "lxc.net.0.link", "lxc.net.0.type"]
    with pytest.raises(ConfigErrors, match="expected one of veth, empty, phys"):
        load_text("lxc.net.3.type = bogus\n", make_registry())


# --- model: repeatable keys, clearing --------------------------------------------------------------------


def test_single_key_last_wins_and_is_located(tmp_path: Path) -> None:
    main = write(tmp_path / "config", "lxc.uts.name = first\n# x\nlxc.uts.name = second\n")
    config = load_config(str(main), make_registry())
    assert config.get("lxc.uts.name") == "second"
    assert config.located("lxc.uts.name") == ConfigValue("lxc.uts.name", "second", "second", str(main), 3, "t")
    assert config.get("lxc.rootfs.managed", "dflt") == "dflt"
    assert config.raw("lxc.rootfs.managed") is None


def test_repeatable_keys_accumulate() -> None:
    text = (
        "lxc.mount.entry = /a a none bind 0 0\n"
        "lxc.uts.name = x\n"
        "lxc.mount.entry = /b b none bind 0 0\n"
        "lxc.cap.drop = sys_admin sys_module\n"
        "lxc.cap.drop = mac_admin\n"
    )
    config = load_text(text, make_registry())
    assert config.get_all("lxc.mount.entry") == ("/a a none bind 0 0", "/b b none bind 0 0")
    assert config.raw("lxc.mount.entry") == "/a a none bind 0 0\n/b b none bind 0 0"
    assert config.get_all("lxc.cap.drop") == (("sys_admin", "sys_module"), ("mac_admin",))
    assert config.located("lxc.mount.entry").line == 3  # type: ignore[union-attr]
    assert config.get_all("lxc.cgroup2.memory.max") == ()


def test_empty_value_clears_a_repeatable_key() -> None:
    text = (
        "lxc.mount.entry = /a a none bind 0 0\n"
        "lxc.mount.entry = /b b none bind 0 0\n"
        "lxc.mount.entry =\n"
        "lxc.mount.entry = /c c none bind 0 0\n"
    )
    config = load_text(text, make_registry())
    assert config.get_all("lxc.mount.entry") == ("/c c none bind 0 0",)
    cleared = load_text(text.rsplit("\n", 2)[0] + "\n", make_registry())
    assert "lxc.mount.entry" not in list(cleared.keys())
    assert cleared.raw("lxc.mount.entry") is None


def test_empty_value_clears_a_single_key() -> None:
    config = load_text("lxc.uts.name = a\nlxc.uts.name =\n", make_registry())
    assert config.get("lxc.uts.name") is None
    assert list(config.keys()) == []


def test_empty_value_clears_everything_below() -> None:
    text = (
        "lxc.net.0.type = veth\n"
        "lxc.net.0.link = br0\n"
        "lxc.net.0.ipv4.address = 10.0.0.2/24\n"
        "lxc.net.1.type = empty\n"
        "lxc.mount.entry = /a a none bind 0 0\n"
        "lxc.net =\n"
        "lxc.net.2.type = phys\n"
    )
    config = load_text(text, make_registry())
    assert config.keys_under("lxc.net") == ["lxc.net.2.type"]
    assert config.indexes("lxc.net.") == [2]
    # Clearing lxc.net does not touch a sibling namespace.
    assert config.get_all("lxc.mount.entry") == ("/a a none bind 0 0",)


def test_clearing_is_by_dotted_prefix_only() -> None:
    # lxc.net.1 = clears lxc.net.1.* but neither lxc.net.10.* nor lxc.net.0.*.
    registry = make_registry()
    registry.add(KeySpec("lxc.net.<N>", plugin="t"))
    text = "lxc.net.1.type = veth\nlxc.net.10.type = veth\nlxc.net.0.type = veth\nlxc.net.1 =\n"
    config = load_text(text, registry)
    assert config.keys_under("lxc.net.") == ["lxc.net.0.type", "lxc.net.10.type"]


def test_mount_entry_cleared_with_real_registry(real_registry: KeyRegistry) -> None:
    text = "lxc.mount.entry = /a a none bind 0 0\nlxc.mount.entry =\nlxc.mount.entry = /b b none bind 0 0\n"
    config = load_text(text, real_registry)
    assert [e.target for e in config.get_all("lxc.mount.entry")] == ["b"]


# --- model: errors ---------------------------------------------------------------------------------------


def test_unknown_key_error_has_location_value_and_hint(tmp_path: Path, real_registry: KeyRegistry) -> None:
    main = write(tmp_path / "config", "lxc.rootfs.path = /srv\nlxc.uts.nmae = web01\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(str(main), real_registry)
    [err] = info.value.errors
    assert (err.path, err.line, err.key, err.value) == (str(main), 2, "lxc.uts.nmae", "web01")
    assert str(err) == f"{main}:2: lxc.uts.nmae = 'web01': unknown key (did you mean 'lxc.uts.name'?)"


def test_unknown_key_without_a_close_match_has_no_hint(real_registry: KeyRegistry) -> None:
    with pytest.raises(ConfigErrors) as info:
        load_text("lxc.zzzzzz.qqqqq = 1\n", real_registry)
    assert "unknown key" in str(info.value)
    assert "did you mean" not in str(info.value)


def test_validator_error(tmp_path: Path, real_registry: KeyRegistry) -> None:
    main = write(tmp_path / "config", "lxc.rootfs.managed = 2\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(str(main), real_registry)
    [err] = info.value.errors
    assert (err.path, err.line, err.key, err.value) == (str(main), 1, "lxc.rootfs.managed", "2")
    assert "expected 0 or 1" in str(err)


def test_all_errors_of_a_file_are_reported_together(tmp_path: Path, real_registry: KeyRegistry) -> None:
    inc = write(tmp_path / "inc.conf", "lxc.pty.max = lots\n")
    main = write(
        tmp_path / "config",
        "lxc.uts.nmae = web\n"
        "lxc.rootfs.path = /srv\n"
        "lxc.rootfs.managed = 2\n"
        f"lxc.include = {inc}\n"
        "lxc.uts.name = ok\n"
        "lxc.init.uid = -5\n",
    )
    with pytest.raises(ConfigErrors) as info:
        load_config(str(main), real_registry)
    errors = info.value.errors
    assert [(e.path, e.line, e.key) for e in errors] == [
        (str(main), 1, "lxc.uts.nmae"),
        (str(main), 3, "lxc.rootfs.managed"),
        (str(inc), 1, "lxc.pty.max"),
        (str(main), 6, "lxc.init.uid"),
    ]
    text = str(info.value)
    for location in (f"{main}:1:", f"{main}:3:", f"{inc}:1:", f"{main}:6:"):
        assert location in text
    assert isinstance(info.value, ConfigError)


# --- unhandled keys: LXC's, but no enabled plugin handles them ---------------------------------------------


def test_key_of_disabled_plugin_is_unhandled_not_unknown(tmp_path: Path) -> None:
    main = write(tmp_path / "config", "lxc.uts.name = a\nlxc.cap.drop = sys_admin\n")
    config = load_config(str(main), Plugins(["caps"], environ={}).key_registry())
    expected = Unhandled("lxc.cap.drop", "sys_admin", str(main), 2, "caps", "is disabled on this host")
    assert config.unhandled == (expected,)
    assert "lxc.cap.drop" not in config.multi
    describe = config.unhandled[0].describe()
    assert describe.startswith(f"{main}:2: lxc.cap.drop")
    assert "'caps'" in describe
    assert "disabled on this host" in describe
    # With caps enabled the same key is handled.
    handled = load_config(str(main), Plugins(environ={}).key_registry())
    assert handled.unhandled == ()
    assert len(handled.get_all("lxc.cap.drop")) == 1


def test_lxc_key_no_plugin_handles_is_unhandled(real_registry: KeyRegistry) -> None:
    config = load_text("lxc.selinux.context = system_u:system_r:lxc_t:s0\n", real_registry)
    [item] = config.unhandled
    assert (item.plugin, item.why) == ("", "an LXC key lxcframe does not support yet (see docs/features.md)")
    assert item.describe() == ("<string>:1: lxc.selinux.context: an LXC key lxcframe does not support yet "
                               "(see docs/features.md)")


@pytest.mark.parametrize("path", STOCK_CONFIGS, ids=os.path.basename)
def test_stock_lxc_config_loads(path: str, real_registry: KeyRegistry) -> None:
    config = load_config(path, real_registry)
    entries = list(read_entries(path))
    unhandled_keys = {u.key for u in config.unhandled}
    for entry in entries:
        assert real_registry.lookup(entry.key) is not None or entry.key in unhandled_keys, entry
    for item in config.unhandled:
        # A disabled plugin's key names it; one no plugin handles says so.
        reason = f"plugin {item.plugin!r}" if item.plugin else "an LXC key lxcframe does not support yet"
        assert reason in item.describe(), item
    if os.path.basename(path) == "common.conf":
        # common.conf includes common.conf.d/: every snippet there with a setting shows up.
        snippets = sorted(glob.glob(os.path.join(LXC_CONFIG_DIR, "common.conf.d", "*.conf")))
        with_settings = {s for s in snippets if any(read_entries(s))}
        assert with_settings <= {e.path for e in entries}


def test_stock_configs_were_found() -> None:
    if not os.path.isdir(LXC_CONFIG_DIR):
        pytest.fail("LXC's stock configs are not installed (scripts/setup-host.sh installs lxc)")
    assert "common.conf" in {os.path.basename(p) for p in STOCK_CONFIGS}


# --- immutability ------------------------------------------------------------------------------------------


def test_container_config_is_immutable() -> None:
    config = load_text("lxc.uts.name = a\nlxc.mount.entry = /a a none bind 0 0\n", make_registry())
    assert isinstance(config, ContainerConfig)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.path = "/elsewhere"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.unhandled = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.single["lxc.uts.name"] = config.single["lxc.uts.name"]  # type: ignore[index]
    with pytest.raises(TypeError):
        del config.multi["lxc.mount.entry"]  # type: ignore[attr-defined]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.single["lxc.uts.name"].value = "b"  # type: ignore[misc]
    assert isinstance(config.multi["lxc.mount.entry"], tuple)
    assert config.get("lxc.uts.name") == "a"


def test_container_config_copies_its_input() -> None:
    value = ConfigValue("lxc.uts.name", "a", "a", "<t>", 1, "t")
    single = {"lxc.uts.name": value}
    config = ContainerConfig(path=None, single=single, multi={})
    single["lxc.uts.name"] = attrs.evolve(value, value="changed")
    single["lxc.other"] = value
    assert config.get("lxc.uts.name") == "a"
    assert "lxc.other" not in config.single


# --- writer --------------------------------------------------------------------------------------------------

ORIGINAL = """\
# Container web01
lxc.rootfs.path = dir:/srv/web01

# Identity
lxc.uts.name = web01
lxc.mount.entry = /a a none bind 0 0
# a mount in the middle
lxc.mount.entry = /b b none bind 0 0
lxc.cap.drop = sys_module

lxc.net.0.type = veth
lxc.net.0.link = br0
"""


def test_set_single_key_keeps_comments_blank_lines_and_order(tmp_path: Path) -> None:
    path = write(tmp_path / "config", ORIGINAL)
    set_item(str(path), "lxc.uts.name", "web02", multi=False)
    assert path.read_text() == ORIGINAL.replace("lxc.uts.name = web01", "lxc.uts.name = web02")


def test_set_single_key_replaces_first_and_drops_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path / "config", "lxc.uts.name = a\n# keep me\nlxc.uts.name = b\nlxc.pty.max = 1\n")
    set_item(str(path), "lxc.uts.name", "c", multi=False)
    assert path.read_text() == "lxc.uts.name = c\n# keep me\nlxc.pty.max = 1\n"


def test_set_repeatable_key_appends_after_last_occurrence(tmp_path: Path) -> None:
    path = write(tmp_path / "config", ORIGINAL)
    set_item(str(path), "lxc.mount.entry", "/c c none bind 0 0", multi=True)
    assert path.read_text() == ORIGINAL.replace(
        "lxc.mount.entry = /b b none bind 0 0\n",
        "lxc.mount.entry = /b b none bind 0 0\nlxc.mount.entry = /c c none bind 0 0\n",
    )


def test_set_empty_value_removes_key_and_keys_below(tmp_path: Path) -> None:
    path = write(tmp_path / "config", ORIGINAL)
    set_item(str(path), "lxc.mount.entry", "", multi=True)
    expected = ORIGINAL.replace("lxc.mount.entry = /a a none bind 0 0\n", "").replace(
        "lxc.mount.entry = /b b none bind 0 0\n", ""
    )
    assert path.read_text() == expected
    set_item(str(path), "lxc.net", "", multi=False)
    assert path.read_text() == expected.replace("lxc.net.0.type = veth\nlxc.net.0.link = br0\n", "")


def test_set_new_key_is_appended(tmp_path: Path) -> None:
    path = write(tmp_path / "config", ORIGINAL)
    set_item(str(path), "lxc.init.cmd", "/sbin/init --debug", multi=False)
    assert path.read_text() == ORIGINAL + "lxc.init.cmd = /sbin/init --debug\n"
    set_item(str(path), "lxc.environment", "A=1", multi=True)
    assert path.read_text().endswith("lxc.init.cmd = /sbin/init --debug\nlxc.environment = A=1\n")


def test_set_creates_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    set_item(str(path), "lxc.uts.name", "new", multi=False)
    assert path.read_text() == "lxc.uts.name = new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_set_adds_missing_final_newline(tmp_path: Path) -> None:
    path = write(tmp_path / "config", "# no newline at end\nlxc.uts.name = a")
    set_item(str(path), "lxc.pty.max", "5", multi=False)
    assert path.read_text() == "# no newline at end\nlxc.uts.name = a\nlxc.pty.max = 5\n"


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o400])
def test_set_keeps_file_mode(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "config", ORIGINAL)
    path.chmod(mode)
    set_item(str(path), "lxc.uts.name", "web02", multi=False)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert "lxc.uts.name = web02\n" in path.read_text()
    # Written atomically: no temporary file is left next to it.
    assert os.listdir(tmp_path) == ["config"]


def test_set_never_touches_included_files(tmp_path: Path) -> None:
    inc = write(tmp_path / "inc.conf", "lxc.uts.name = from-include\n")
    path = write(tmp_path / "config", f"lxc.include = {inc}\n")
    set_item(str(path), "lxc.uts.name", "own", multi=False)
    assert inc.read_text() == "lxc.uts.name = from-include\n"
    assert path.read_text() == f"lxc.include = {inc}\nlxc.uts.name = own\n"
    assert load_config(str(path), make_registry()).get("lxc.uts.name") == "own"


@pytest.mark.parametrize("value", ["a\nlxc.cap.keep = none", "a\rb", "a\u2028b", "a\n"])
def test_set_refuses_a_value_spanning_lines(tmp_path: Path, value: str) -> None:
    path = write(tmp_path / "config", ORIGINAL)
    with pytest.raises(ConfigError, match="one line"):
        set_item(str(path), "lxc.init.cmd", value, multi=False)
    assert path.read_text() == ORIGINAL


# --- writer: property --------------------------------------------------------------------------------------

# key -> repeatable. "lxc.a" has keys below it, so clearing it also clears "lxc.a.b" and "lxc.a.c".
PROPERTY_KEYS = {"lxc.a": False, "lxc.a.b": True, "lxc.a.c": False, "lxc.ab": True, "lxc.d": False}
HEADER = "# header comment\n\n"


def property_registry() -> KeyRegistry:
    registry = KeyRegistry()
    for name, multi in PROPERTY_KEYS.items():
        registry.add(KeySpec(name, multi=multi, plugin="t"))
    return registry


safe_values = st.text(alphabet="abcXYZ019/_-.:,=# ", max_size=12).map(str.strip)
operations = st.lists(st.tuples(st.sampled_from(sorted(PROPERTY_KEYS)), safe_values), max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_set_item_then_read_gives_expected_values(ops: list[tuple[str, str]]) -> None:
    expected: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(HEADER)
        for key, value in ops:
            set_item(path, key, value, multi=PROPERTY_KEYS[key])
            if value == "":
                for name in [k for k in expected if k == key or k.startswith(key + ".")]:
                    del expected[name]
            elif PROPERTY_KEYS[key]:
                expected.setdefault(key, []).append(value)
            else:
                expected[key] = [value]
        config = load_config(path, property_registry())
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    for key, multi in PROPERTY_KEYS.items():
        if multi:
            assert list(config.get_all(key)) == expected.get(key, []), key
        else:
            assert config.get(key) == (expected[key][0] if key in expected else None), key
    assert text.startswith(HEADER)
    # One line per single key: set_item never leaves a duplicate behind.
    lines = text.splitlines()
    for key, multi in PROPERTY_KEYS.items():
        count = sum(1 for line in lines if line.split(" = ")[0] == key)
        assert count == (len(expected.get(key, [])) if multi else int(key in expected)), key
