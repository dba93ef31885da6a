"""What a non-root caller gets by default: its own lxcpath and run directory, its subordinate ids, the
base cgroup of its delegated subtree, and the maps a helper namespace adds for the caller itself."""

from __future__ import annotations

import os

import pytest

from lxcframe import hostconfig, run_root, subid, userns_exec
from lxcframe.idmap import IdMapEntry
from lxcframe.plugins.cgroup import delegated
from lxcframe.plugins.cgroup.layout import V1, V2, Hierarchy


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("LXCFRAME_RUNDIR", raising=False)


def test_root_keeps_the_system_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.delenv("LXCFRAME_RUNDIR", raising=False)
    assert run_root.run_root() == "/run/lxcframe"
    assert hostconfig.default_lxcpath() == "/var/lib/lxcframe"


def test_a_user_gets_xdg_paths(as_user: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert run_root.run_root() == "/run/user/1000/lxcframe"
    assert hostconfig.default_lxcpath() == "/home/u/.local/share/lxcframe"
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    assert hostconfig.default_lxcpath() == "/data/lxcframe"
    monkeypatch.setenv("LXCFRAME_RUNDIR", "/elsewhere")
    assert run_root.run_root() == "/elsewhere"


def test_a_user_without_runtime_dir_falls_back_to_its_cache(as_user: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    assert run_root.run_root() == "/home/u/.cache/lxcframe/run"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative")  # not absolute: ignored, as LXC does not trust it either
    assert run_root.run_root() == "/home/u/.cache/lxcframe/run"


def test_subid_ranges_by_name_or_uid(tmp_path) -> None:
    path = tmp_path / "subuid"
    path.write_text("other:100000:65536\nroot:1:2\n0:300:5\nbroken\nroot:x:1\nroot:400:0\n")
    assert subid.ranges("u", 0, str(path)) == [(1, 2), (300, 5)]
    assert subid.ranges("u", 0, str(tmp_path / "missing")) == []


def test_the_caller_is_mapped_above_the_containers_ranges() -> None:
    entries = [IdMapEntry("u", 0, 100000, 65536), IdMapEntry("g", 0, 100000, 65536)]
    maps = userns_exec.with_caller(entries)
    assert IdMapEntry("u", 65536, os.getuid(), 1) in maps or any(
        e.kind == "u" and e.hostid <= os.getuid() < e.hostid + e.count for e in entries)
    assert len([e for e in maps if e.kind == "g"]) in (1, 2)
    inside = [IdMapEntry("u", 0, os.getuid(), 1), IdMapEntry("g", 0, os.getgid(), 1)]
    assert userns_exec.with_caller(inside) == inside, "already mapped: nothing added"


def test_the_base_is_the_top_of_the_writable_subtree(monkeypatch: pytest.MonkeyPatch) -> None:
    writable = {"/a/deleg", "/a/deleg/leaf", "/user.slice/user-4242.slice/user@4242.service"}
    monkeypatch.setattr(delegated, "_writable", lambda hierarchy, cgroup: cgroup in writable)
    pids = Hierarchy(V1, "/sys/fs/cgroup/pids", ("pids",))
    unified = Hierarchy(V2, "/sys/fs/cgroup/unified")
    bases = delegated.user_bases([pids, unified], uid=4242, own_entries=[("pids", "/a/deleg/leaf"), ("", "/a/deleg")])
    assert bases == {pids: "/a/deleg", unified: "/a/deleg"}
    # Not in a delegated cgroup: systemd's user@UID.service in the unified tree, nothing in a v1 one.
    bases = delegated.user_bases([unified], uid=4242, own_entries=[("", "/user.slice/user-4242.slice/session-1.scope")])
    assert bases == {unified: "/user.slice/user-4242.slice/user@4242.service"}
    with pytest.raises(PermissionError, match=r"no cgroup delegated to uid 4242 in the pids hierarchy: "
                       r"/sys/fs/cgroup/pids/a is not writable"):
        delegated.user_bases([pids], uid=4242, own_entries=[("pids", "/a")])
