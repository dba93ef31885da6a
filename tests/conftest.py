"""Shared fixtures: a private lxcpath and run directory per test, and a check that the host stays clean."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lxcframe.container import Container


def _mount_lines() -> set[str]:
    with open("/proc/self/mountinfo") as handle:
        return {" ".join(line.split()[3:5]) for line in handle}


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children of children included)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.fixture
def rundir(tmp_path, monkeypatch) -> str:
    path = str(tmp_path / "run")
    monkeypatch.setenv("LXCFRAME_RUNDIR", path)
    # The supervisor of this run directory leaves soon after its last monitor, so that a test's
    # host check can see it gone.
    monkeypatch.setenv("LXCFRAME_SUPERVISOR_IDLE", "0.2")
    # Every container a test creates stays below this test process's own cgroups (machine rule):
    # the host config's default lines give each new container lxc.cgroup.relative = 1.
    defaults = tmp_path / "default.conf"
    defaults.write_text("lxc.cgroup.relative = 1\n")
    host_config = tmp_path / "lxcframe.toml"
    host_config.write_text(f'default_config = "{defaults}"\n')
    monkeypatch.setenv("LXCFRAME_HOST_CONFIG", str(host_config))
    return path


@pytest.fixture
def lxcpath(tmp_path, rundir) -> str:
    path = tmp_path / "lxc"
    path.mkdir()
    return str(path)


@pytest.fixture
def source_dir(tmp_path):
    """A host directory holding ``hello`` ("injected"), for mounts into containers."""
    path = tmp_path / "src"
    path.mkdir()
    (path / "hello").write_text("injected\n")
    return path


class HostCheck:
    """What the host looked like before a test; ``assert_clean`` compares after."""

    def __init__(self, rundir: str) -> None:
        self.rundir = rundir
        self.mounts = _mount_lines()

    def _wait_for_supervisor(self, timeout: float = 10.0) -> None:
        sock = os.path.join(self.rundir, "supervisor.sock")
        deadline = time.monotonic() + timeout
        while os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.02)

    def leftovers(self) -> list[str]:
        self._wait_for_supervisor()
        problems = []
        new_mounts = _mount_lines() - self.mounts
        if new_mounts:
            problems.append(f"mounts left: {sorted(new_mounts)}")
        procs = _descendants(os.getpid())
        # The test process's own helpers (pytest has none) would show up here; containers must not.
        if procs:
            cmdlines = []
            for pid in procs:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        words = handle.read().split(b"\0")
                    cmdlines.append(f"{pid}: {b' '.join(words).decode()}")
                except OSError:
                    continue
            if cmdlines:
                problems.append(f"processes left: {cmdlines}")
        if os.path.isdir(self.rundir):
            files = [os.path.join(d, f) for d, _, fs in os.walk(self.rundir) for f in fs]
            if files:
                problems.append(f"runtime files left: {files}")
        return problems

    def assert_clean(self) -> None:
        problems = self.leftovers()
        assert not problems, "; ".join(problems)


@pytest.fixture
def host(rundir) -> HostCheck:
    return HostCheck(rundir)


@pytest.fixture
def make_container(lxcpath, host) -> Iterator[Callable[..., Container]]:
    """Create busybox containers; every one is force-destroyed at teardown, then the host is checked."""
    made: list[Container] = []

    def make(name: str = "c1", config: tuple[tuple[str, str], ...] = (), **kwargs: object) -> Container:
        container = Container(name, lxcpath, **kwargs)  # type: ignore[arg-type]
        container.create("busybox", config=config)
        made.append(container)
        return container

    yield make
    for container in made:
        if container.defined:
            try:
                container.destroy(force=True)
            except Exception as err:  # keep destroying the others; the host check reports leftovers
                print(f"teardown of {container.name}: {err}", file=sys.stderr)
    host.assert_clean()


def compile_static(directory: Path, name: str, source: str) -> str:
    """A C helper compiled static, so that it runs in a busybox rootfs; returns its path."""
    (directory / f"{name}.c").write_text(source)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(directory / name), str(directory / f"{name}.c")],
                   check=True, capture_output=True)
    return str(directory / name)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lxcframe", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)
