"""cgroup2 device control: ``lxc.cgroup2.devices.allow``/``deny`` compiled into a BPF device program.

The rules are folded as LXC folds them (allow-list by default, a bare ``a`` switching the default and
dropping what came before, a later rule for the same device replacing an earlier one), assembled
into a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program and attached to the payload cgroup of the unified
tree before init joins it. On this hybrid VM the program holds next to the v1 devices controller;
tests/test_cgroup2_private.py runs the same on a pure cgroup2 layout.

The containers run real device accesses (mknod, open) as root inside a busybox rootfs; the kernel's
answer (EPERM or not) is what the tests read. After a stop the program is detached and freed.
"""

from __future__ import annotations

import errno
import os
import time

import pytest

from lxcframe import state as st
from lxcframe import syscalls
from lxcframe.errors import ConfigError
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins.cgroup import device_program
from lxcframe.plugins.cgroup.device_rules import DevicePolicy, DeviceRule, fold, parse_rule
from lxcframe.plugins.cgroup.layout import V2
from lxcframe.plugins.cgroup.limits import Limit
from lxcframe.plugins.cgroup.placement import CgroupRecord, Placed, from_record
from lxcframe.plugins.cgroup.probe import DEVICES_ROW

from . import hostfacts
from .cgroup_helpers import capture

pytestmark = pytest.mark.container

RELATIVE = ("lxc.cgroup.relative", "1")
FACTS = hostfacts.cgroups()
needs_cgroup2 = pytest.mark.skipif(FACTS.unified_mount is None, reason=f"layout {FACTS.mode}: no cgroup2 mount")
ALLOW, DENY = "lxc.cgroup2.devices.allow", "lxc.cgroup2.devices.deny"


def rules(*pairs: tuple[str, str]) -> list[Limit]:
    return [Limit(key, key.split(".", 2)[2], "devices", value, "config", line)
            for line, (key, value) in enumerate(pairs, 1)]


def c(major: int | None, minor: int | None, access: int, allow: bool) -> DeviceRule:
    return DeviceRule("c", major, minor, access, allow)


# --- the rules, folded as LXC folds them ----------------------------------------------------------------------


def test_an_allow_rule_without_a_default_makes_an_allow_list():
    assert fold(rules((ALLOW, "c 1:3 rwm"))) == DevicePolicy(False, (c(1, 3, 7, True),))


def test_a_bare_a_sets_the_default_and_drops_the_rules_before_it():
    assert fold(rules((ALLOW, "c 1:3 rwm"), (ALLOW, "a"), (DENY, "c 1:5 w"))) == \
        DevicePolicy(True, (c(1, 5, 4, False),))
    assert fold(rules((DENY, "c 1:5 w"), (DENY, "a"), (ALLOW, "b *:* m"))) == \
        DevicePolicy(False, (DeviceRule("b", None, None, 1, True),))


def test_a_later_rule_for_the_same_device_replaces_an_earlier_one():
    taken_back = fold(rules((DENY, "a"), (ALLOW, "c 1:3 rwm"), (ALLOW, "c 1:5 rwm"), (DENY, "c 1:5 rwm")))
    assert taken_back == DevicePolicy(False, (c(1, 3, 7, True),))
    given_again = fold(rules((DENY, "a"), (ALLOW, "c 1:5 rw"), (DENY, "c 1:5 rw"), (ALLOW, "c 1:5 wr")))
    assert given_again == DevicePolicy(False, (c(1, 5, 6, True),))


def test_an_exception_of_the_default_kind_takes_back_nothing_wider():
    # LXC's list: "deny c 1:3 m" is no part of "allow c *:* m" (another device), so it changes nothing.
    assert fold(rules((DENY, "a"), (ALLOW, "c *:* m"), (DENY, "c 1:3 m"))) == \
        DevicePolicy(False, (c(None, None, 1, True),))


def test_a_device_path_is_an_allow_rule_with_its_numbers():
    info = os.stat("/dev/null")
    assert parse_rule("devices.allow", "/dev/null rw") == c(os.major(info.st_rdev), os.minor(info.st_rdev), 6, True)
    assert parse_rule("devices.deny", "a") is None and parse_rule("devices.allow", " a ") is None
    assert parse_rule("devices.allow", "a *:* rwm") == DeviceRule("a", None, None, 7, True)


@pytest.mark.parametrize(("value", "message"), [
    ("c 1:3", "'c 1:3': expected 'a', or 'TYPE MAJOR:MINOR ACCESS' (e.g. 'c 1:3 rwm')"),
    ("x 1:3 rwm", "expected a device type a, b or c, got 'x'"),
    ("c 1-3 rwm", "expected MAJOR:MINOR, got '1-3'"),
    ("c one:3 rwm", "expected a major number or '*', got 'one'"),
    ("c 1:4294967296 rwm", "minor number 4294967296 is too large"),
    ("c 1:3 rwx", "expected an access of up to three of the letters r, w, m, got 'rwx'"),
])
def test_bad_rules_are_refused_with_their_line(value, message):
    with pytest.raises(ValueError) as refused:
        fold(rules((DENY, "a"), (ALLOW, value)))
    assert str(refused.value) == f"config:2: {ALLOW}: {message}"


def test_a_device_path_in_a_deny_rule_is_refused():
    with pytest.raises(ValueError) as refused:
        fold(rules((DENY, "/dev/null rwm")))
    assert str(refused.value) == (f"config:1: {DENY}: a device path is taken by devices.allow only; "
                                  "write the rule as 'c|b MAJOR:MINOR ACCESS'")


# --- the program and the kernel ------------------------------------------------------------------------------


def test_the_program_has_a_test_per_given_field_and_ends_with_the_default():
    def count(policy: DevicePolicy) -> int:
        return len(device_program.assemble(policy)) // 8

    prologue_and_default = count(DevicePolicy(False, ()))
    assert prologue_and_default == 6 + 2
    # Every access, both types, any numbers: the verdict alone.
    assert count(DevicePolicy(False, (DeviceRule("a", None, None, 7, True),))) == prologue_and_default + 2
    # An access mask (3), a type, a major, a minor (1 each), the verdict (2).
    assert count(DevicePolicy(False, (c(1, 3, 6, True),))) == prologue_and_default + 3 + 3 + 2


def test_the_kernel_loads_the_program_and_a_refusal_carries_the_verifier_log():
    program = syscalls.prog_load(syscalls.BPF_PROG_TYPE_CGROUP_DEVICE,
                                 device_program.assemble(fold(rules((DENY, "a"), (ALLOW, "c *:* m")))), "t")
    os.close(program)
    # Reading r0 before anything set it: the verifier refuses and says where.
    no_exit = bytes([0xBF, 0x01, 0, 0, 0, 0, 0, 0]) + bytes([0x95, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(OSError) as refused:
        syscalls.prog_load(syscalls.BPF_PROG_TYPE_CGROUP_DEVICE, no_exit, "t")
    assert refused.value.errno == errno.EACCES and "(verifier: " in str(refused.value), refused.value


@needs_cgroup2
def test_check_has_a_row_for_bpf_device_control():
    rows = [probe for impl in Plugins().hook.lxcframe_check.get_hookimpls()
            if impl.plugin_name == "cgroup" for probe in impl.function()]
    (row,) = [probe for probe in rows if probe.name == DEVICES_ROW]
    assert row.supported, row
    assert row.detail.startswith("lxc.cgroup2.devices rules: a BPF_PROG_TYPE_CGROUP_DEVICE program loads, "
                                 f"attached to the payload cgroup at {FACTS.unified_mount}")
    assert ("lxc.cgroup.devices rules hold as well" in row.detail) == (FACTS.v1_with("devices") is not None)


# --- real containers -------------------------------------------------------------------------------------------


def unified_of(container) -> Placed:
    (unified,) = [p for p in from_record(container.current_state().record(CgroupRecord)) if p.kind == V2]
    return unified


def freed(prog_id: int, timeout: float = 5.0) -> bool:
    """Whether the kernel has let go of program ``prog_id`` (it frees it shortly after the last reference)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.close(syscalls.prog_fd_by_id(prog_id))
        except FileNotFoundError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


#: Each line prints a word the test reads: what was allowed, or the shell's error.
PROBE_SCRIPT = "; ".join([
    "echo x > /dev/null && echo null:open",
    "head -c 1 /dev/zero | wc -c | sed 's/^/zero:read /'",
    "mknod /dev/t-null c 1 3 && head -c 1 /dev/t-null >/dev/null && echo t-null:mknod",
    "mknod /dev/t-urandom c 1 9 && echo t-urandom:mknod",
    "head -c 1 /dev/urandom | wc -c | sed 's/^/urandom:read /'",
    "echo x > /dev/full; echo full:$?",
    "mknod /dev/t-full c 1 7 && echo t-full:mknod",
    "true",
])


@needs_cgroup2
def test_an_allow_list_denies_every_other_device_and_a_later_rule_takes_one_back(make_container):
    container = make_container("bpfallow", config=(
        RELATIVE,
        (DENY, "a"),
        (ALLOW, "c 1:3 rwm"),
        (ALLOW, "c 1:5 rwm"),
        (ALLOW, "c 1:9 rw"),
        (ALLOW, "c 5:* rwm"),
        (ALLOW, "c 136:* rwm"),
        (DENY, "c 1:5 rwm"),  # takes /dev/zero back
    ))
    container.start()
    try:
        unified = unified_of(container)
        directory = unified.path(unified.payload)
        (prog_id,) = device_program.attached(directory)
        code, out = capture(container, PROBE_SCRIPT)
    finally:
        container.stop(kill=True)
    assert code == 0, out
    lines = out.splitlines()
    assert "null:open" in lines and "t-null:mknod" in lines and "urandom:read 1" in lines, out
    # Denied: the kernel answers EPERM to the open and to the mknod.
    assert "head: /dev/zero: Operation not permitted" in lines and "zero:read 0" in lines, out
    assert "mknod: /dev/t-urandom: Operation not permitted" in lines, out  # 1:9 has no m
    assert "/bin/sh: can't create /dev/full: Operation not permitted" in lines and "full:1" in lines, out
    assert "mknod: /dev/t-full: Operation not permitted" in lines, out
    assert container.state == st.STOPPED and not os.path.isdir(directory)
    assert freed(prog_id), f"program {prog_id} is still loaded after the stop"


@needs_cgroup2
def test_a_deny_list_allows_every_other_device_with_access_bits(make_container):
    container = make_container("bpfdeny", config=(
        RELATIVE,
        (ALLOW, "a"),
        (DENY, "c 1:5 rwm"),
        (DENY, "c 1:7 m"),  # /dev/full: no mknod, but the node autodev made opens
        (DENY, "c 1:9 rwm"),
        (ALLOW, "c 1:9 rwm"),  # later: /dev/urandom is allowed again
    ))
    container.start()
    try:
        (prog_id,) = device_program.attached(unified_of(container).path(unified_of(container).payload))
        code, out = capture(container, PROBE_SCRIPT)
    finally:
        container.stop(kill=True)
    assert code == 0, out
    lines = out.splitlines()
    assert {"null:open", "t-null:mknod", "t-urandom:mknod", "urandom:read 1"} <= set(lines), out
    assert "head: /dev/zero: Operation not permitted" in lines, out
    # Writing to /dev/full fails as /dev/full does (ENOSPC): the open itself was allowed.
    assert "full:1" in lines and "sh: write error: No space left on device" in lines, out
    assert "mknod: /dev/t-full: Operation not permitted" in lines, out
    assert freed(prog_id)


@needs_cgroup2
def test_a_bad_rule_stops_the_start_with_file_line_and_key(make_container):
    container = make_container("bpfbad", config=(RELATIVE, (DENY, "a"), (ALLOW, "c 1:3 rwx")))
    with open(container.config_file_name) as handle:
        line = len(handle.readlines())
    with pytest.raises(ConfigError) as refused:
        container.start()
    assert str(refused.value) == (f"{container.config_file_name}:{line}: {ALLOW}: "
                                  "expected an access of up to three of the letters r, w, m, got 'rwx'")
    assert container.state == st.STOPPED


def loaded_device_programs() -> set[int]:
    """The ids of the device programs lxcframe loaded that the kernel still holds."""
    found = set()
    for prog_id in syscalls.prog_ids():
        try:
            program = syscalls.prog_fd_by_id(prog_id)
        except FileNotFoundError:
            continue  # freed meanwhile
        try:
            prog_type, _, name = syscalls.prog_info(program)
        finally:
            os.close(program)
        if prog_type == syscalls.BPF_PROG_TYPE_CGROUP_DEVICE and name == device_program.PROGRAM_NAME:
            found.add(prog_id)
    return found


@needs_cgroup2
def test_a_start_that_fails_after_the_program_was_attached_leaves_no_program(make_container, tmp_path):
    hook = tmp_path / "refuse.sh"
    hook.write_text("#!/bin/sh\nexit 3\n")
    hook.chmod(0o755)
    container = make_container("bpffail", config=(
        RELATIVE, (DENY, "a"), (ALLOW, "c 1:3 rwm"), ("lxc.hook.start-host", str(hook))))
    before = loaded_device_programs()
    with pytest.raises(Exception, match="start-host"):
        container.start()
    assert container.state == st.STOPPED
    deadline = time.monotonic() + 5
    while loaded_device_programs() - before:
        assert time.monotonic() < deadline, f"programs left: {loaded_device_programs() - before}"
        time.sleep(0.05)
