"""complement_globs: every path below a directory but the kept branches, one character at a time."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lxcframe.plugins.apparmor.globs import build_tree, complement_globs

from .apparmor_glob import matched_by_any, matches


def kept(branches: list[str], names: list[str]) -> bool:
    """What the module promises to leave unmatched: a kept name (with all below it unless it ends in a
    single ``*``), a name a ``**`` keeps, or a directory on the way to one."""
    return any(_kept_by(branch.strip("/").split("/"), names) for branch in branches)


def _kept_by(components: list[str], names: list[str]) -> bool:
    for i, name in enumerate(names):
        if i == len(components):
            return not components[-1].endswith("*")  # below a kept name, not below a kept name prefix
        component = components[i]
        if component.endswith("**"):
            return name.startswith(component[:-2])
        if not (name.startswith(component[:-1]) if component.endswith("*") else name == component):
            return False
    return True


def test_one_branch_character_by_character():
    # A name the branch starts with is another name: ne, n (as /sys/dev is next to /sys/devices).
    assert complement_globs("/proc/sys", ["net/**"]) == [
        "/proc/sys/[^n]*{,/**}", "/proc/sys/n{,[^e]*}{,/**}", "/proc/sys/ne{,[^t]*}{,/**}", "/proc/sys/net?*{,/**}"]


def test_a_kept_name_keeps_all_below_it():
    assert complement_globs("/proc/sys", ["kernel/hostname"]) == [
        "/proc/sys/[^k]*{,/**}", "/proc/sys/k{,[^e]*}{,/**}", "/proc/sys/ke{,[^r]*}{,/**}",
        "/proc/sys/ker{,[^n]*}{,/**}", "/proc/sys/kern{,[^e]*}{,/**}", "/proc/sys/kerne{,[^l]*}{,/**}",
        "/proc/sys/kernel/[^h]*{,/**}", "/proc/sys/kernel/h{,[^o]*}{,/**}", "/proc/sys/kernel/ho{,[^s]*}{,/**}",
        "/proc/sys/kernel/hos{,[^t]*}{,/**}", "/proc/sys/kernel/host{,[^n]*}{,/**}",
        "/proc/sys/kernel/hostn{,[^a]*}{,/**}", "/proc/sys/kernel/hostna{,[^m]*}{,/**}",
        "/proc/sys/kernel/hostnam{,[^e]*}{,/**}", "/proc/sys/kernel/hostname?*{,/**}", "/proc/sys/kernel?*{,/**}"]


def test_sibling_names_share_their_common_prefix():
    assert complement_globs("/x/", ["ab", "ac/**", "b"]) == [
        "/x/[^ab]*{,/**}", "/x/a{,[^bc]*}{,/**}", "/x/ab?*{,/**}", "/x/ac?*{,/**}", "/x/b?*{,/**}"]


def test_a_kept_name_that_another_extends():
    # ab is kept and so is abb: abc is not, abb is, and so is all below ab.
    assert complement_globs("/x", ["ab", "abb"]) == [
        "/x/[^a]*{,/**}", "/x/a{,[^b]*}{,/**}", "/x/ab[^b]*{,/**}", "/x/abb?*{,/**}"]


def test_name_prefixes_and_wildcard_subtrees():
    # shm*: every name starting with shm is kept, nothing below them.
    assert complement_globs("/k", ["shm*"]) == ["/k/[^s]*{,/**}", "/k/s{,[^h]*}{,/**}", "/k/sh{,[^m]*}{,/**}",
                                                "/k/shm*/**"]
    # k**: every name starting with k, and all below.
    assert complement_globs("/sys", ["k**"]) == ["/sys/[^k]*{,/**}"]
    assert complement_globs("/sys", ["ke**"]) == ["/sys/[^k]*{,/**}", "/sys/k{,[^e]*}{,/**}"]
    assert complement_globs("/sys", ["**"]) == []
    # A sibling after a wildcard subtree gets its own globs.
    assert complement_globs("/sys", ["k**", "m"]) == ["/sys/[^km]*{,/**}", "/sys/m?*{,/**}"]
    assert complement_globs("/", ["/a/"]) == ["/[^a]*{,/**}", "/a?*{,/**}"]


def test_within_keeps_only_the_globs_for_names_starting_with_it():
    full = complement_globs("/sys", ["kernel/security/**", "fs/**"])
    within = complement_globs("/sys", ["kernel/security/**", "fs/**"], within="k")
    assert within == [g for g in full if g.startswith("/sys/k")]
    assert within[0] == "/sys/k{,[^e]*}{,/**}" and len(within) == 15
    assert "/sys/[^fk]*{,/**}" in full and "/sys/[^fk]*{,/**}" not in within
    assert complement_globs("/sys", ["kernel/hostname"], within="kernel/") == [
        "/sys/kernel/[^h]*{,/**}", "/sys/kernel/h{,[^o]*}{,/**}", "/sys/kernel/ho{,[^s]*}{,/**}",
        "/sys/kernel/hos{,[^t]*}{,/**}", "/sys/kernel/host{,[^n]*}{,/**}", "/sys/kernel/hostn{,[^a]*}{,/**}",
        "/sys/kernel/hostna{,[^m]*}{,/**}", "/sys/kernel/hostnam{,[^e]*}{,/**}", "/sys/kernel/hostname?*{,/**}"]
    assert complement_globs("/sys", ["fs/**"], within="z") == []


def test_names_are_taken_verbatim_whatever_their_case():
    # Sorted by character: "X" and "Y" come before "[" as they do in prefix[^c]*.
    assert complement_globs("/sys/class/X", ["XY/**"]) == [
        "/sys/class/X/XY?*{,/**}", "/sys/class/X/X{,[^Y]*}{,/**}", "/sys/class/X/[^X]*{,/**}"]
    assert complement_globs("/boX/", ["/X/"]) == ["/boX/X?*{,/**}", "/boX/[^X]*{,/**}"]


def test_build_tree_merges_branches():
    assert build_tree(["/a/b/", "a/c", "d", "a/b/e"]) == {"a": {"b": {"e": {}}, "c": {}}, "d": {}}
    assert build_tree([]) == {}


PROC_SYS = ("kernel/shm*", "kernel/sem*", "kernel/msg*", "kernel/hostname", "kernel/domainname", "net/**")


def test_the_proc_sys_exceptions_the_profile_uses():
    globs = complement_globs("/proc/sys", PROC_SYS)
    for path in ("kernel/shmmax", "kernel/shmall", "kernel/sem", "kernel/msgmnb", "kernel/hostname",
                 "kernel/domainname", "net", "net/ipv4/ip_forward", "net/core/somaxconn", "kernel"):
        assert not matched_by_any(globs, f"/proc/sys/{path}"), path
    for path in ("kernel/core_pattern", "kernel/shmmax/x", "kernel/hostnames", "kernel/hostnam", "kernel/modprobe",
                 "fs/binfmt_misc/register", "vm/overcommit_memory", "kernelx", "kernelx/y", "n", "netx/y",
                 "kernel/h", "kernel/s", "kernel/sysrq", "kernel/domain", "kernel/msg/x"):
        assert matched_by_any(globs, f"/proc/sys/{path}"), path
    assert not matched_by_any(globs, "/proc/sys")
    assert not matched_by_any(globs, "/proc/sysx")


def test_sys_dev_is_not_taken_for_sys_devices():
    globs = complement_globs("/sys", ("fs/cgroup/**", "devices/virtual/net/**", "class/net/**", "k**"))
    for path in ("dev", "dev/char/1:3", "dev/block", "devices/system/cpu/cpu0/online", "devices/virtual/mem",
                 "class/ne", "fs/cgrou", "fs/c", "class/n/x", "firmware", "module/x/parameters/y"):
        assert matched_by_any(globs, f"/sys/{path}"), path
    for path in ("devices", "devices/virtual", "devices/virtual/net/eth0/mtu", "class/net/lo/mtu", "fs",
                 "fs/cgroup/x/cgroup.procs", "kernel/mm", "k"):
        assert not matched_by_any(globs, f"/sys/{path}"), path


names = st.text(alphabet="abc", min_size=1, max_size=4)
leaf = st.tuples(st.text(alphabet="ab", min_size=1, max_size=3), st.sampled_from(["", "", "*", "**"]))
branch = st.builds(
    lambda dirs, last: "/".join([*dirs, last[0] + last[1]]),
    st.lists(st.text(alphabet="ab", min_size=1, max_size=3), max_size=2), leaf)


def no_overlap(branches: list[str]) -> bool:
    """The module's conditions: no sibling starts with the part of a name before its ``*``, and no branch
    goes on below another (which keeps all below it already)."""
    if any(other.startswith(f"{kept_name}/") for kept_name in branches for other in branches):
        return False
    def ok(tree: dict) -> bool:
        for name, below in tree.items():
            stem = name.rstrip("*")
            if name != stem and any(other != name and other.startswith(stem) for other in tree):
                return False
            if not ok(below):
                return False
        return True
    return ok(build_tree(branches))


@settings(derandomize=True, max_examples=150, deadline=None)
@given(branches=st.lists(branch, min_size=1, max_size=4).filter(no_overlap),
       paths=st.lists(st.lists(names, min_size=1, max_size=4), min_size=1, max_size=8))
@example(branches=["ab", "abb"], paths=[["abb"], ["abbb"], ["ab", "c"], ["aba"], ["a"]])
@example(branches=["a**", "b"], paths=[["bc"], ["b", "c"], ["ac", "b"], ["c"]])
@example(branches=["ab/b*", "b**"], paths=[["a"], ["ab"], ["ab", "b"], ["ab", "bb", "a"], ["ab", "a"], ["bab"]])
def test_globs_match_exactly_the_paths_off_the_kept_branches(branches, paths):
    globs = complement_globs("/base", branches)
    assert not matched_by_any(globs, "/base")
    for path in paths:
        text = "/base/" + "/".join(path)
        assert matched_by_any(globs, text) != kept(branches, path), (text, [g for g in globs if matches(g, text)])
