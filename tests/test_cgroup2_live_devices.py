"""Device rules changed on a running container whose devices a cgroup2 device program controls:
``Container.set_cgroup_item('devices.deny', …)`` and ``lxcframe cgroup NAME devices.deny …``, as LXC's
``lxc-cgroup`` on such a host.

The new rule is folded into the recorded policy, the program of the result attached, the old one
detached: the tests count the programs attached to the payload cgroup with BPF_PROG_QUERY and see the
old one freed. What a shell inside can open is the kernel's answer. On this hybrid VM the container
below has cgroup2 device rules, so its program and the v1 devices file both take the rule; the pure
cgroup2 test (a private cgroup2 mount, as tests/test_cgroup2_private.py) shows the program alone.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from lxcframe import state as st
from lxcframe.errors import ContainerError
from lxcframe.plugins.cgroup import device_program, device_record
from lxcframe.plugins.cgroup.device_rules import (
    ALLOW,
    DENY,
    DevicePolicy,
    DeviceRule,
    fold,
    fold_into,
    parse_rule,
    v1_list,
)

from . import hostfacts
from .cgroup_helpers import capture
from .conftest import run_cli
from .test_cgroup2_devices import freed, needs_cgroup2, rules, unified_of
from .test_cgroup2_private import fresh, in_pure_cgroup2
from .test_cgroup2_private import unified_of as pure_unified_of

pytestmark = pytest.mark.container

RELATIVE = ("lxc.cgroup.relative", "1")
FACTS = hostfacts.cgroups()
CG2_ALLOW, CG2_DENY = "lxc.cgroup2.devices.allow", "lxc.cgroup2.devices.deny"
ZERO = "head -c 1 /dev/zero | wc -c | sed 's/^/zero:read /'"


def c(major: int | None, minor: int | None, access: int, allow: bool) -> DeviceRule:
    return DeviceRule("c", major, minor, access, allow)


# --- folding one more rule into a policy ------------------------------------------------------------------------


@pytest.mark.parametrize("config", [
    ((CG2_DENY, "a"), (CG2_ALLOW, "c 1:3 rwm"), (CG2_ALLOW, "c 1:5 rwm")),
    ((CG2_ALLOW, "a"), (CG2_DENY, "c 1:5 rwm"), (CG2_DENY, "c 1:7 m")),
    ((CG2_DENY, "a"), (CG2_ALLOW, "c *:* m"), (CG2_ALLOW, "b 8:0 r")),
])
@pytest.mark.parametrize("added", [
    (ALLOW, "c 1:5 rwm"), (DENY, "c 1:5 rwm"), (ALLOW, "c 1:9 rw"), (DENY, "c 1:7 m"), (ALLOW, "a"), (DENY, "a"),
    (DENY, "b 8:0 r"),
])
def test_a_rule_folded_into_a_policy_gives_what_folding_every_rule_in_order_gives(config, added):
    file, value = added
    whole = fold(rules(*config, (f"lxc.cgroup2.{file}", value)))
    stepwise = fold_into(fold(rules(*config)), file, parse_rule(file, value))
    # The same verdict for every exception: their order is no part of the policy.
    assert stepwise.allow_by_default == whole.allow_by_default
    assert sorted(stepwise.exceptions, key=repr) == sorted(whole.exceptions, key=repr)


def test_devices_list_shows_the_policy_as_cgroup_v1_shows_its_list():
    allow_list = DevicePolicy(False, (c(1, 3, 7, True), DeviceRule("b", None, None, 1, True), c(136, None, 6, True)))
    assert v1_list(allow_list) == ["c 1:3 rwm", "b *:* m", "c 136:* rw"]
    # A deny-list: v1 shows every device allowed, its exceptions not at all.
    assert v1_list(DevicePolicy(True, (c(1, 5, 7, False),))) == ["a *:* rwm"]
    assert v1_list(DevicePolicy(False, ())) == []


# --- real containers ---------------------------------------------------------------------------------------------


DENIED = {"head: /dev/zero: Operation not permitted", "zero:read 0"}


def zero_lines(container) -> set[str]:
    """What a shell inside says reading a byte of /dev/zero: ``zero:read 1``, or EPERM (:data:`DENIED`)."""
    code, out = capture(container, ZERO + "; true")
    assert code == 0, out
    return set(out.splitlines())


def replaced(directory: str, old: int) -> int:
    """The one program attached to ``directory`` now, checked to be another than ``old``, which is freed."""
    (now,) = device_program.attached(directory)
    assert now != old and freed(old), (old, now)
    return now


@needs_cgroup2
def test_a_rule_denied_and_allowed_again_while_it_runs_replaces_the_program(make_container, lxcpath):
    container = make_container("bpflive", config=(
        RELATIVE, (CG2_DENY, "a"), (CG2_ALLOW, "c 1:3 rwm"), (CG2_ALLOW, "c 1:5 rwm"), (CG2_ALLOW, "c 5:* rwm"),
        (CG2_ALLOW, "c 136:* rwm"),
    ))
    container.start()
    try:
        unified = unified_of(container)
        directory = unified.path(unified.payload)
        (first,) = device_program.attached(directory)
        assert container.get_cgroup_item("devices.list") == "c 1:3 rwm\nc 1:5 rwm\nc 5:* rwm\nc 136:* rwm"
        assert zero_lines(container) == {"zero:read 1"}

        container.set_cgroup_item("devices.deny", "c 1:5 rwm")
        second = replaced(directory, first)
        assert zero_lines(container) == DENIED
        assert container.get_cgroup_item("devices.list") == "c 1:3 rwm\nc 5:* rwm\nc 136:* rwm"

        container.set_cgroup_item("devices.allow", "c 1:5 rwm")
        third = replaced(directory, second)
        assert zero_lines(container) == {"zero:read 1"}

        result = run_cli("-P", lxcpath, "cgroup", "bpflive", "devices.deny", "c 1:5 rwm")
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
        fourth = replaced(directory, third)
        assert zero_lines(container) == DENIED
        result = run_cli("-P", lxcpath, "cgroup", "bpflive", "devices.list")
        assert (result.returncode, result.stdout) == (0, "c 1:3 rwm\nc 5:* rwm\nc 136:* rwm\n"), result

        # A bad rule: one line naming key and value, and nothing changed.
        with pytest.raises(ContainerError) as refused:
            container.set_cgroup_item("devices.allow", "c 1:5 rwx")
        assert str(refused.value) == ("cgroup key 'devices.allow' = 'c 1:5 rwx': expected an access of up to "
                                      "three of the letters r, w, m, got 'rwx'")
        result = run_cli("-P", lxcpath, "cgroup", "bpflive", "devices.deny", "c 1:5")
        assert (result.returncode, result.stderr) == (1, "lxcframe: error: cgroup key 'devices.deny' = 'c 1:5': "
                                                      "'c 1:5': expected 'a', or 'TYPE MAJOR:MINOR ACCESS' "
                                                      "(e.g. 'c 1:3 rwm')\n"), result
        with pytest.raises(ContainerError, match=r"^cgroup key 'devices.list': the file is read-only$"):
            container.set_cgroup_item("devices.list", "a")
        with pytest.raises(ContainerError, match=r"^cgroup key 'devices.allow': the file is write-only$"):
            container.get_cgroup_item("devices.allow")
        with pytest.raises(ContainerError, match=r"^cgroup key 'devices.deny' = 'c 1:5\\x07 rwm': a value is one "):
            container.set_cgroup_item("devices.deny", "c 1:5\x07 rwm")
        assert device_program.attached(directory) == [fourth]
        record_file = device_record.record_path(container.current_state().runtime_dir)
        assert os.path.exists(record_file)
        if FACTS.v1_with("devices") is not None:
            # A hybrid host: the v1 devices cgroup took the rule too, and holds without the program.
            assert device_program.detach(directory, fourth) and device_program.attached(directory) == []
            assert zero_lines(container) == DENIED
        with open(record_file, "w") as handle:
            handle.write("{}")
        with pytest.raises(ContainerError, match=r"^bpflive: malformed device rule record .*cgroup2-devices\.json: "):
            container.set_cgroup_item("devices.allow", "c 1:5 rwm")
    finally:
        container.stop(kill=True)
    assert container.state == st.STOPPED and not os.path.isdir(directory) and not os.path.exists(record_file)
    assert freed(fourth), f"program {fourth} is still loaded after the stop"


def test_pure_cgroup2_a_container_without_device_rules_gets_a_program_while_it_runs(make_container, lxcpath):
    """No rule at start: no program, every device allowed (``devices.list``: ``a *:* rwm``). A deny while it
    runs attaches the first program; allowing again replaces it; the stop detaches and frees the last."""
    make_container("p2live", config=(RELATIVE,))

    def body() -> dict[str, Any]:
        container = fresh("p2live", lxcpath)
        container.start()
        seen: dict[str, Any] = {}
        try:
            unified = pure_unified_of(container)
            directory = unified.path(unified.payload)
            seen["before"] = device_program.attached(directory)
            seen["list_before"] = container.get_cgroup_item("devices.list")
            container.set_cgroup_item("devices.deny", "c 1:5 rwm")
            seen["denied"] = device_program.attached(directory)
            seen["zero_denied"] = sorted(zero_lines(container))
            container.set_cgroup_item("devices.deny", "a")
            container.set_cgroup_item("devices.allow", "c 1:5 rwm")
            container.set_cgroup_item("devices.allow", "/dev/null rwm")
            for rule in ("c 5:* rwm", "c 136:* rwm"):
                container.set_cgroup_item("devices.allow", rule)
            seen["allowed"] = device_program.attached(directory)
            seen["list_after"] = container.get_cgroup_item("devices.list")
            code, out = capture(container, ZERO + "; head -c 1 /dev/urandom | wc -c; true")
            seen["out"], seen["code"] = out, code
        finally:
            container.stop(kill=True)
        seen["gone"] = not os.path.isdir(directory)
        return seen

    seen = in_pure_cgroup2(body)
    assert seen["before"] == [] and seen["list_before"] == "a *:* rwm", seen
    assert len(seen["denied"]) == 1 and set(seen["zero_denied"]) == DENIED, seen
    assert len(seen["allowed"]) == 1 and seen["allowed"] != seen["denied"], seen
    assert freed(seen["denied"][0])
    assert seen["list_after"] == "c 1:5 rwm\nc 1:3 rwm\nc 5:* rwm\nc 136:* rwm", seen
    assert seen["code"] == 0 and sorted(seen["out"].splitlines()) == [
        "0", "head: /dev/urandom: Operation not permitted", "zero:read 1"], seen
    assert seen["gone"] and freed(seen["allowed"][0]), seen
