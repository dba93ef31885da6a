"""The generated AppArmor profile, line by line: base section, each feature and setting, raw lines."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from pathlib import Path

import attrs
import pytest

from lxcframe.plugins.apparmor.naming import profile_names
from lxcframe.plugins.apparmor.profile import ProfileFeatures, raw_line_range, render

from .apparmor_glob import matched_by_any

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "data" / "apparmor"
NAMES = profile_names("c1", "/var/lib/lxc")
OFF = ProfileFeatures(unix=False, cgroupns=False, stacking=False, nesting=False, unprivileged=False)
RAW = ("  # added by the administrator", "  /srv/data/** rw,")
ALL = ProfileFeatures(unix=True, cgroupns=True, stacking=True, nesting=True, unprivileged=True, raw=RAW)
#: The committed golden profiles (tests/data/apparmor) and the features each was generated with.
GOLDEN = {
    "minimal": OFF, "unix": attrs.evolve(OFF, unix=True), "cgroupns": attrs.evolve(OFF, cgroupns=True),
    "stacking": attrs.evolve(OFF, stacking=True), "nesting": attrs.evolve(OFF, nesting=True),
    "nesting-stacking": attrs.evolve(OFF, nesting=True, stacking=True),
    "unprivileged": attrs.evolve(OFF, unprivileged=True), "raw": attrs.evolve(OFF, raw=RAW), "all": ALL,
}


def sections(text: str) -> dict[str, list[str]]:
    """Each ``### …`` section's lines after its title, up to the blank line before the next one."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines()[2:-1]:
        if line.startswith("  ### "):
            current = found.setdefault(line.strip(), [])
        else:
            current.append(line)
    return {title: lines[:-1] if lines and lines[-1] == "" else lines for title, lines in found.items()}


def rules(text: str, prefix: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith(prefix)]


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_profile_is_the_committed_golden_text(case):
    assert render(NAMES, GOLDEN[case]) == (GOLDEN_DIR / f"{case}.profile").read_text()


def test_header_sections_in_order_and_closing_brace():
    text = render(NAMES, ALL)
    lines = text.splitlines()
    assert lines[:3] == ["#include <tunables/global>",
                         'profile "lxc-c1_</var/lib/lxc>" flags=(attach_disconnected,mediate_deleted) {',
                         "  ### Base profile"]
    assert [line for line in lines if line.startswith("  ###")] == [
        "  ### Base profile", "  ### Feature: unix", "  ### Feature: cgroup namespace",
        "  ### Feature: apparmor stacking", "  ### Configuration: nesting",
        "  ### Configuration: unprivileged container"]
    assert lines[-3:] == [*RAW, "}"] and text.endswith("}\n")
    # Every rule line is indented by two spaces, blank lines are empty.
    assert all(line == "" or line.startswith("  ") for line in lines[2:-1])
    assert "" in lines and not any(line.strip() == "" and line for line in lines)


def test_minimal_profile_has_the_base_and_no_stacking_only():
    text = render(NAMES, OFF)
    assert list(sections(text)) == ["### Base profile", "### Feature: apparmor stacking (not present)"]
    assert sections(text)["### Feature: apparmor stacking (not present)"] == ["  deny /sys/k*{,/**} rwklx,"]
    assert text.splitlines()[-2:] == ["  deny /sys/k*{,/**} rwklx,", "}"]


def test_base_rules():
    base = sections(render(NAMES, OFF))["### Base profile"]
    assert base[:5] == ["  capability,", "  dbus,", "  file,", "  network,", "  umount,"]
    for rule in ("signal (receive),", "signal peer=@{profile_name},", "ptrace (readby),", "ptrace (tracedby),",
                 "ptrace peer=@{profile_name},", "deny mount options=(ro, remount) -> /,",
                 "deny mount options=(ro, remount, silent) -> /,", "mount fstype=tmpfs,", "mount fstype=fuse.*,",
                 "mount fstype=proc -> /proc/,", "mount fstype=sysfs -> /sys/,",
                 "deny mount fstype=debugfs -> /var/lib/ureadahead/debugfs/,",
                 "mount options=(rw, nosuid, nodev, noexec, remount) -> /sys/,",
                 "mount options=(ro, nosuid, nodev, noexec, remount, strictatime) -> /sys/fs/cgroup/,",
                 "deny @{PROC}/kcore rwklx,", "deny @{PROC}/sysrq-trigger rwklx,",
                 "deny /sys/firmware/efi/efivars/** rwklx,", "deny /sys/kernel/debug/{,**} rwklx,"):
        assert f"  {rule}" in base, rule


def test_read_only_bind_remounts_with_every_subset_of_nosuid_noexec_nodev():
    expected = [f"mount options=({','.join(('ro', 'remount', 'bind', *subset))}),"
                for size in range(4) for subset in itertools.combinations(("nosuid", "noexec", "nodev"), size)]
    assert rules(render(NAMES, OFF), "mount options=(ro,remount,bind") == expected
    assert expected[0] == "mount options=(ro,remount,bind)," and expected[-1] == (
        "mount options=(ro,remount,bind,nosuid,noexec,nodev),")


def test_bind_and_move_mounts_anywhere_but_over_proc_sys_dev_and_dev_lxc():
    text = render(NAMES, OFF)
    for kind in ("bind", "move"):
        globs = [re.fullmatch(rf"mount options=\(rw,{kind}\) (\S+),", r).group(1)
                 for r in rules(text, f"mount options=(rw,{kind}) ")]
        assert len(globs) == 16
        for target in ("/mnt", "/srv/data", "/d", "/pro", "/procs", "/sysfs", "/dev/pts", "/dev/shm", "/dev/.lx",
                       "/dev/.lxcx", "/home/u/proc", "/var/lib/sys"):
            assert matched_by_any(globs, target), (kind, target)
        for target in ("/proc", "/proc/sys", "/sys", "/sys/fs/cgroup", "/dev", "/dev/.lxc", "/dev/.lxc/proc", "/"):
            assert not matched_by_any(globs, target), (kind, target)


def test_writes_in_proc_sys_and_sys_only_where_the_kernel_namespaces_them():
    text = render(NAMES, OFF)
    denied = [re.fullmatch(r"deny (\S+) wklx,", r).group(1) for r in rules(text, "deny /") if r.endswith(" wklx,")]
    for path in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/vm/drop_caches",
                 "/proc/sys/fs/binfmt_misc/register", "/proc/sys/kernel/hostnam", "/sys/dev/char/1:3",
                 "/sys/devices/system/cpu/cpu1/online", "/sys/class/block/sda/x", "/sys/fs/ext4/x", "/sys/power/state",
                 "/sys/module/x/parameters/y", "/sys/firmware/acpi/x", "/sys/devices/virtual/mem/null/uevent"):
        assert matched_by_any(denied, path), path
    for path in ("/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname", "/proc/sys/kernel/shmmax",
                 "/proc/sys/kernel/sem", "/proc/sys/kernel/msgmnb", "/proc/sys/net/ipv4/ip_forward",
                 "/sys/fs/cgroup/c1/cgroup.procs", "/sys/class/net/eth0/mtu", "/sys/devices/virtual/net/veth0/mtu",
                 # /sys/k* is left to the stacking sections.
                 "/sys/kernel/security/apparmor/.load", "/sys/kernel/mm/x"):
        assert not matched_by_any(denied, path), path
    assert rules(text, "deny @{PROC}/") == ["deny @{PROC}/bus/** wklx,", "deny @{PROC}/sys/fs/** wklx,",
                                           "deny @{PROC}/kcore rwklx,", "deny @{PROC}/sysrq-trigger rwklx,"]


def test_unix_section():
    assert sections(render(NAMES, attrs.evolve(OFF, unix=True)))["### Feature: unix"] == [
        "  # Receive on unix sockets from anyone; any unix socket use among the container's processes.",
        "  unix (receive),",
        "  unix peer=(label=@{profile_name}),",
    ]
    assert "unix" not in render(NAMES, OFF).replace("unix rules", "")


def test_cgroup_namespace_section():
    assert sections(render(NAMES, attrs.evolve(OFF, cgroupns=True)))["### Feature: cgroup namespace"] == [
        "  mount fstype=cgroup -> /sys/fs/cgroup/**,",
        "  mount fstype=cgroup2 -> /sys/fs/cgroup/**,",
    ]
    assert "fstype=cgroup" not in render(NAMES, OFF)


def test_stacking_section_opens_securityfs_for_apparmor_only_and_the_own_namespace():
    text = render(NAMES, attrs.evolve(OFF, stacking=True))
    assert "### Feature: apparmor stacking (not present)" not in sections(text)
    lines = sections(text)["### Feature: apparmor stacking"]
    assert lines[0] == "  # Profiles may be loaded into the container's own policy namespace."
    assert lines[-2:] == ['  change_profile -> ":lxc-c1_<-var-lib-lxc>:*",',
                          '  change_profile -> ":lxc-c1_<-var-lib-lxc>://*",']
    denied = [re.fullmatch(r"  deny (\S+) wklx,", line).group(1) for line in lines[1:-2]]
    assert len(denied) == 24 and all(glob.startswith("/sys/k") for glob in denied)
    for path in ("/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/security/ima/policy",
                 "/sys/kernel/debug/x", "/sys/k", "/sys/kernelx", "/sys/kernel/securityx"):
        assert matched_by_any(denied, path), path
    for path in ("/sys/kernel/security/apparmor/.load", "/sys/kernel/security/apparmor/policy/x", "/sys/kernel",
                 "/sys/kernel/security"):
        assert not matched_by_any(denied, path), path


def test_nesting_section_with_and_without_stacking():
    nesting = [
        "  pivot_root,", "  ptrace,", "  signal,", "",
        "  # The unobstructed proc and sysfs mounted for a nested runtime are for reading only.",
        "  deny /dev/.lxc/proc/** rw,", "  deny /dev/.lxc/sys/** rw,", "",
        "  mount fstype=proc -> /usr/lib/*/lxc/**,", "  mount fstype=sysfs -> /usr/lib/*/lxc/**,",
        "  mount options=(rw,bind),", "  mount options=(rw,rbind),", "  mount options=(rw,make-rshared),", "",
        "  # A nested container's read-only bind remount of proc/sys cannot be told apart from other",
        "  # mounts by the parser, so every mount is allowed.",
        "  mount,",
    ]
    stacked = render(NAMES, attrs.evolve(OFF, nesting=True, stacking=True))
    assert sections(stacked)["### Configuration: nesting"] == nesting
    # Without a policy namespace the nested runtime may only keep this very profile.
    alone = render(NAMES, attrs.evolve(OFF, nesting=True))
    assert sections(alone)["### Configuration: nesting"] == [*nesting, '  change_profile -> "lxc-c1_</var/lib/lxc>",']
    assert list(sections(alone)) == ["### Base profile", "### Feature: apparmor stacking (not present)",
                                     "### Configuration: nesting"]
    assert "change_profile" not in render(NAMES, OFF)


def test_unprivileged_section():
    assert sections(render(NAMES, attrs.evolve(OFF, unprivileged=True)))["### Configuration: unprivileged container"] \
        == [
        "  pivot_root,", "",
        "  # Mount propagation may be changed anywhere.",
        "  mount options=(rw,make-slave) -> **,", "  mount options=(rw,make-rslave) -> **,",
        "  mount options=(rw,make-shared) -> **,", "  mount options=(rw,make-rshared) -> **,",
        "  mount options=(rw,make-private) -> **,", "  mount options=(rw,make-rprivate) -> **,",
        "  mount options=(rw,make-unbindable) -> **,", "  mount options=(rw,make-runbindable) -> **,", "",
        "  # The user namespace already keeps these from reaching the host.",
        "  mount options=(rw,bind),", "  mount options=(rw,rbind),", "  mount options=(ro,remount),",
    ]
    assert "pivot_root" not in render(NAMES, OFF)


def test_raw_lines_verbatim_before_the_closing_brace():
    raw = ("/srv/** rw,", "", "  deny /tmp/x w,  ", "}  # not a brace of ours")
    text = render(NAMES, attrs.evolve(OFF, raw=raw))
    assert text.splitlines()[-5:] == [*raw, "}"]
    assert text == render(NAMES, OFF).removesuffix("}\n") + "\n".join(raw) + "\n}\n"


def test_names_of_another_container():
    names = profile_names("web", "/srv/lxc")
    text = render(names, attrs.evolve(OFF, stacking=True, nesting=True))
    assert text.splitlines()[1] == 'profile "lxc-web_</srv/lxc>" flags=(attach_disconnected,mediate_deleted) {'
    assert '  change_profile -> ":lxc-web_<-srv-lxc>:*",' in text.splitlines()
    assert 'change_profile -> "lxc-web_</srv/lxc>",' in render(names, attrs.evolve(OFF, nesting=True))


@pytest.mark.parametrize("features", [OFF, ALL, attrs.evolve(ALL, stacking=False),
                                      attrs.evolve(OFF, nesting=True, raw=("a,", "b,", "c,"))],
                         ids=["minimal", "all", "all-unstacked", "nesting"])
def test_raw_line_range_points_at_the_raw_lines(features):
    lines = render(NAMES, features).splitlines()
    span = raw_line_range(NAMES, features)
    assert [lines[n - 1] for n in span] == list(features.raw)
    assert span.stop == len(lines)  # the closing brace follows
    assert span.step == 1 and len(span) == len(features.raw)


def test_the_full_profile_compiles():
    parser = shutil.which("apparmor_parser") or "/usr/sbin/apparmor_parser"
    result = subprocess.run([parser, "-QK"], input=render(NAMES, ALL), capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stderr
