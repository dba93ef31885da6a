"""Config key declarations and the registry (lxcframe.config.keys): matching, lookup, hints, validators."""

from __future__ import annotations

import pytest

from lxcframe.config.keys import (
    KeyRegistry,
    KeySpec,
    absolute_path,
    boolean01,
    choice,
    closest,
    integer,
    uint,
    unhandled_reason,
    words,
)

# --- KeySpec and matching --------------------------------------------------------------------------------


def test_default_spec_keeps_the_text() -> None:
    spec = KeySpec("lxc.uts.name")
    assert spec.validator(" any text ") == " any text "
    assert (spec.multi, spec.doc, spec.plugin, spec.shared_with) == (False, "", "", ())


@pytest.mark.parametrize(
    ("name", "pattern"),
    [("lxc.uts.name", False), ("lxc.net.<N>.type", True), ("lxc.cgroup2.*", True), ("lxc.net.<N>", True),
     ("lxc.a*", False), ("lxc.*.b", False)],
)
def test_is_pattern(name: str, pattern: bool) -> None:
    assert KeySpec(name).is_pattern is pattern


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("lxc.uts.name", "lxc.uts.name", True),
        ("lxc.uts.name", "lxc.uts.nam", False),
        ("lxc.uts.name", "lxc.uts.name.x", False),
        ("lxc.net.<N>.type", "lxc.net.0.type", True),
        ("lxc.net.<N>.type", "lxc.net.17.type", True),
        ("lxc.net.<N>.type", "lxc.net.01.type", False),
        ("lxc.net.<N>.type", "lxc.net.00.type", False),
        ("lxc.net.<N>.type", "lxc.net.x.type", False),
        ("lxc.net.<N>.type", "lxc.net..type", False),
        ("lxc.net.<N>.type", "lxc.net.-1.type", False),
        ("lxc.net.<N>.type", "lxc.net.\u0661.type", False),  # an Arabic-Indic digit is not an index
        ("lxc.net.<N>.type", "lxc.net.0.link", False),
        ("lxc.net.<N>.type", "lxc.net.0", False),
        ("lxc.net.<N>.type", "lxc.net.0.type.x", False),
        ("lxc.net.<N>.type", "lxc.nat.0.type", False),
        ("lxc.net.<N>", "lxc.net", False),
        ("lxc.net.<N>", "lxc.net.3", True),
        ("lxc.cgroup2.*", "lxc.cgroup2.memory.max", True),
        ("lxc.cgroup2.*", "lxc.cgroup2.cpu", True),
        ("lxc.cgroup2.*", "lxc.cgroup2", False),
        ("lxc.cgroup2.*", "lxc.cgroup2.", False),
        ("lxc.cgroup2.*", "lxc.cgroup2..", True),
        ("lxc.cgroup2.*", "lxc.cgroup2.a b", False),
        ("lxc.cgroup2.*", "lxc.cgroup2.a\tb", False),
        ("lxc.cgroup2.*", "lxc.cgroup2.a\u00a0b", False),
        ("lxc.cgroup2.*", "lxc.cgroup.memory.max", False),
        ("lxc.cgroup2.*", "lxc.cgroup2x.memory", False),
        ("lxc.net.<N>.*", "lxc.net.1.ipv4.address", True),
        ("lxc.net.<N>.*", "lxc.net.1", False),
        ("lxc.net.<N>.*", "lxc.net.a.b", False),
        ("lxc.a.*", "lxc.a.*", True),
        ("lxc.a.b*", "lxc.a.bc", False),
        ("lxc.a.b*", "lxc.a.b*", True),
    ],
)
def test_matches(pattern: str, key: str, expected: bool) -> None:
    assert KeySpec(pattern).matches(key) is expected


# --- registry --------------------------------------------------------------------------------------------


def specs(*names: str, plugin: str = "t") -> KeyRegistry:
    registry = KeyRegistry()
    for name in names:
        registry.add(KeySpec(name, plugin=plugin))
    return registry


def test_lookup_exact_then_most_specific_pattern() -> None:
    for order in (
        ("lxc.net.*", "lxc.net.<N>.*", "lxc.net.<N>.type", "lxc.net.0.type"),
        ("lxc.net.0.type", "lxc.net.<N>.type", "lxc.net.<N>.*", "lxc.net.*"),
        ("lxc.net.<N>.*", "lxc.net.*", "lxc.net.0.type", "lxc.net.<N>.type"),
    ):
        registry = specs(*order)
        found = {key: registry.lookup(key) for key in
                 ("lxc.net.0.type", "lxc.net.1.type", "lxc.net.1.link", "lxc.net.x.link", "lxc.uts.name")}
        assert {key: (spec.name if spec else None) for key, spec in found.items()} == {
            "lxc.net.0.type": "lxc.net.0.type",
            "lxc.net.1.type": "lxc.net.<N>.type",
            "lxc.net.1.link": "lxc.net.<N>.*",
            "lxc.net.x.link": "lxc.net.*",
            "lxc.uts.name": None,
        }


def test_add_refuses_a_name_declared_twice() -> None:
    registry = KeyRegistry()
    registry.add(KeySpec("lxc.uts.name", plugin="core"))
    registry.add(KeySpec("lxc.cgroup2.*", plugin="cgroup"))
    with pytest.raises(ValueError) as caught:
        registry.add(KeySpec("lxc.uts.name", plugin="other"))
    assert str(caught.value) == "config key 'lxc.uts.name' declared by both 'core' and 'other'"
    with pytest.raises(ValueError) as caught:
        registry.add(KeySpec("lxc.cgroup2.*", plugin="mine"))
    assert str(caught.value) == "config key 'lxc.cgroup2.*' declared by both 'cgroup' and 'mine'"
    # Nothing was replaced.
    assert registry.lookup("lxc.uts.name").plugin == "core"  # type: ignore[union-attr]
    assert registry.lookup("lxc.cgroup2.cpu.max").plugin == "cgroup"  # type: ignore[union-attr]
    assert [s.name for s in registry.specs()] == ["lxc.uts.name", "lxc.cgroup2.*"]


def test_specs_lists_exact_keys_then_patterns_longest_first() -> None:
    registry = specs("lxc.cgroup2.*", "lxc.b", "lxc.net.<N>.type", "lxc.a")
    assert [s.name for s in registry.specs()] == ["lxc.b", "lxc.a", "lxc.net.<N>.type", "lxc.cgroup2.*"]


def test_inactive_owner_and_why_not_handled() -> None:
    registry = specs("lxc.uts.name")
    registry.add_inactive("lxc.seccomp.*", "seccomp", "is disabled")
    registry.add_inactive("lxc.seccomp.profile", "seccomp-profile", "is not installed")
    registry.add_inactive("lxc.hook.*", "hooks", "failed to load")
    assert registry.inactive_owner("lxc.seccomp.profile") == ("seccomp-profile", "is not installed")
    assert registry.inactive_owner("lxc.seccomp.notify.proxy") == ("seccomp", "is disabled")
    assert registry.inactive_owner("lxc.hook.start") == ("hooks", "failed to load")
    assert registry.inactive_owner("lxc.uts.name") is None
    assert registry.why_not_handled("lxc.seccomp.notify.proxy") == "handled by plugin 'seccomp', which is disabled"
    assert registry.why_not_handled("lxc.hook.start") == "handled by plugin 'hooks', which failed to load"


def test_a_key_no_plugin_handles_gives_the_reason_alone() -> None:
    registry = specs("lxc.uts.name")
    registry.add_inactive("lxc.time.offset.boot", "", "an LXC key lxcframe does not support yet")
    assert registry.inactive_owner("lxc.time.offset.boot") == ("", "an LXC key lxcframe does not support yet")
    assert registry.why_not_handled("lxc.time.offset.boot") == "an LXC key lxcframe does not support yet"
    assert unhandled_reason("", "why") == "why"
    assert unhandled_reason("p", "is off") == "handled by plugin 'p', which is off"


def test_inactive_owner_first_declaration_wins_a_tie() -> None:
    registry = KeyRegistry()
    registry.add_inactive("lxc.a.*", "first", "is off")
    registry.add_inactive("lxc.a.*", "second", "is off too")
    assert registry.inactive_owner("lxc.a.b") == ("first", "is off")


def test_applied_by_the_most_specific_name() -> None:
    registry = KeyRegistry()
    registry.add_inactive("lxc.net.*", "netns", "is disabled", applied_by="net-a")
    registry.add_inactive("lxc.net.<N>.*", "netns", "is disabled", applied_by="net-b")
    registry.add_inactive("lxc.net.<N>.*", "netns", "is disabled", applied_by="net-c")
    registry.add_inactive("lxc.proc.*", "procfs", "is disabled")
    assert registry.applied_by("lxc.net.0.type") == "net-b"
    # Longest, not greatest: "lxc.net.0.type" sorts before "lxc.net.<N>.*".
    registry.add_inactive("lxc.net.0.type", "netns", "is disabled", applied_by="net-d")
    assert registry.applied_by("lxc.net.0.type") == "net-d"
    assert registry.applied_by("lxc.net.0.link") == "net-b"
    assert registry.applied_by("lxc.net.x") == "net-a"
    assert registry.applied_by("lxc.proc.oom_score_adj") == ""
    assert registry.applied_by("lxc.uts.name") == ""
    # Recorded as inactive all the same.
    assert registry.inactive_owner("lxc.proc.oom_score_adj") == ("procfs", "is disabled")


def test_unknown_key_with_and_without_hint() -> None:
    registry = specs("lxc.uts.name", "lxc.net.<N>.type", "lxc.cgroup2.*")
    assert registry.suggest("lxc.uts.nmae") == "lxc.uts.name"
    assert registry.suggest("lxc.net.0.tpye") == "lxc.net.0.type"
    assert registry.suggest("lxc.cgroup2") == "lxc.cgroup2"
    assert registry.suggest("lxc.cgroup3.") == "lxc.cgroup2"
    assert registry.suggest("completely.different") is None
    assert registry.why_not_handled("lxc.uts.nmae") == "unknown key (did you mean 'lxc.uts.name'?)"
    assert registry.why_not_handled("completely.different") == "unknown key"


def test_closest() -> None:
    assert closest("lxc.tty.mx", ["lxc.tty.max", "lxc.tty.dir"]) == "lxc.tty.max"
    assert closest("lxc.tty.max", iter(["lxc.tty.max"])) == "lxc.tty.max"
    assert closest("abc", []) is None
    # The cutoff: 3 of 4 letters in common (ratio 0.75) is close enough, 2 of 4 is not.
    assert closest("abcd", ["abcx"]) == "abcx"
    assert closest("abcd", ["abxy"]) is None
    assert closest("abc", ["abx"]) is None  # 2 of 3 (0.67) is not
    # Only the best one is given.
    assert closest("lxc.mount.entyr", ["lxc.mount.entry", "lxc.mount.entry2"]) == "lxc.mount.entry"


# --- validators ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("0", False), ("1", True)])
def test_boolean01(text: str, value: bool) -> None:
    assert boolean01(text) is value


@pytest.mark.parametrize("text", ["", "2", "true", "yes", " 1", "01", "-0"])
def test_boolean01_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^expected 0 or 1$"):
        boolean01(text)


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("42", 42), ("007", 7), ("+3", 3), (" 5 ", 5),
                                             ("4294967296", 2**32)])
def test_uint(text: str, value: int) -> None:
    assert uint(text) == value


@pytest.mark.parametrize("text", ["-1", "-0x1", "x", "", "1.0", "0x10", "1e3"])
def test_uint_refused(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        uint(text)
    assert str(caught.value) == "expected an unsigned integer"


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("-12", -12), ("010", 10), ("+7", 7)])
def test_integer(text: str, value: int) -> None:
    assert integer(text) == value


@pytest.mark.parametrize("text", ["x", "", "1.5", "0x10", "--1"])
def test_integer_refused(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        integer(text)
    assert str(caught.value) == "expected an integer"


def test_choice() -> None:
    validate = choice("veth", "empty", "phys")
    assert validate("empty") == "empty"
    with pytest.raises(ValueError, match=r"^expected one of veth, empty, phys$"):
        validate("macvlan")
    with pytest.raises(ValueError, match=r"^expected one of veth, empty, phys$"):
        validate("Veth")


@pytest.mark.parametrize(("text", "ok"), [("/", True), ("/var/log/x", True), ("var/log", False), ("", False),
                                          (" /x", False)])
def test_absolute_path(text: str, ok: bool) -> None:
    if ok:
        assert absolute_path(text) == text
    else:
        with pytest.raises(ValueError, match=r"^expected an absolute path$"):
            absolute_path(text)


def test_words() -> None:
    assert words("sys_module  mac_admin\tsys_time") == ("sys_module", "mac_admin", "sys_time")
    assert words("") == ()
    assert words("one") == ("one",)
