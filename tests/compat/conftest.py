"""Differential tests of ``lxcframe.compat.lxc`` against python3-lxc.

One python3-lxc-style script (``scripts/``) runs twice: with Debian's ``/usr/bin/python3`` and the
real python3-lxc over LXC, and with this venv's interpreter and ``lxcframe.compat.lxc``. Each run
prints what every call gave (its repr, or the class of what it raised); the two must be equal.
LXC's containers live in a private lxcpath, with no network device (``lxc.net.0.type = empty``)
and below this process's cgroup (``lxc.cgroup.relative = 1``); both are destroyed at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.compat.differential import Run

SCRIPTS = Path(__file__).parent / "scripts"
REPOSITORY = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


def _has_python3_lxc() -> bool:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    found = subprocess.run([SYSTEM_PYTHON, "-c", "import lxc"], capture_output=True, check=False)
    return found.returncode == 0


@pytest.fixture(scope="session")
def python3_lxc() -> str:
    """Debian's python3 with python3-lxc (``scripts/setup-host.sh`` installs it)."""
    if not _has_python3_lxc():
        pytest.skip("python3-lxc is not installed (apt-get install python3-lxc; scripts/setup-host.sh does)")
    # LXC makes its lock directory /run/lxc on first use and keeps it, as lxcframe keeps /run/lxcframe:
    # made here, before the first test's host snapshot, it is not that test's leftover.
    # Likewise util-linux's /run/mount (libmount's utab), which LXC's mounts make.
    for directory in ("/run/lxc", "/run/mount"):
        os.makedirs(directory, mode=0o755, exist_ok=True)
    return SYSTEM_PYTHON


def _run(python: str, script: str, mode: str, lxcpath: str, name: str, extra: tuple[str, ...],
         env: dict[str, str]) -> Run:
    done = subprocess.run([python, str(SCRIPTS / script), mode, lxcpath, name, *extra], capture_output=True, text=True,
                          env=env, timeout=300, check=False, cwd=str(SCRIPTS))
    assert done.returncode == 0, f"{script} ({mode}) exited {done.returncode}:\n{done.stderr}"
    last = done.stdout.strip().splitlines()[-1]
    return Run(tuple((label, result) for label, result in json.loads(last)), done.stderr)


def _destroy_lxc(lxcpath: str, name: str) -> None:
    if os.path.exists(os.path.join(lxcpath, name)):
        subprocess.run(["lxc-stop", "-k", "-P", lxcpath, "-n", name], capture_output=True, check=False, timeout=60)
        subprocess.run(["lxc-destroy", "-f", "-s", "-P", lxcpath, "-n", name], capture_output=True, check=False,
                       timeout=60)


def _lxc_cgroups(names: list[str]) -> set[str]:
    """Where LXC puts its monitor and payload cgroups below ours (``lxc.cgroup.relative = 1``), and the
    ``lxc.pivot`` it moves a monitor to when it ends: LXC leaves these directories behind."""
    from tests.conftest import _own_cgroup_dirs

    leaves = ["lxc.pivot", *(f"lxc.{kind}.{name}" for name in names for kind in ("monitor", "payload"))]
    return {os.path.join(top, leaf) for top in _own_cgroup_dirs() for leaf in leaves}


def _remove_cgroup_tree(path: str, timeout: float = 10.0) -> None:
    """rmdir ``path`` and its children, deepest first; a cgroup busy with a monitor still leaving is
    tried again until ``timeout``."""
    deadline = time.monotonic() + timeout
    while os.path.isdir(path):
        for directory, _subdirs, _files in sorted(os.walk(path), key=lambda entry: -len(entry[0])):
            with contextlib.suppress(FileNotFoundError, OSError):
                os.rmdir(directory)
        if not os.path.isdir(path) or time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def _destroy_lxcframe(lxcpath: str, name: str) -> None:
    from lxcframe.container import Container

    container = Container(name, lxcpath)
    if container.defined:
        for snapshot in container.snapshot_list():  # a script that failed half-way may leave some
            container.snapshot_destroy(snapshot.name)
        container.destroy(force=True)


@pytest.fixture
def differential(python3_lxc: str, tmp_path: Path, lxcpath: str, host) -> Iterator[Callable[..., tuple[Run, Run]]]:
    """``differential(script, name, *extra)`` runs ``script`` on both sides; returns (python3-lxc's, compat's)."""
    real_path = tmp_path / "lxc-real"
    real_path.mkdir()
    made: list[str] = []
    names = ["compat-life", "compat-life-args", "compat-attach", "compat-config", "compat-net", "compat-copies",
             "compat-copy", "compat-copy2", "compat-copy3",
             "compat-copy4", "compat-copy5", "compat-renamed", "fresh", "other", "compat-reboot", "compat-cgroup",
             "compat-dev", "compat-defs", "compat-defs-new", "compat-snap"]
    cgroups_before = {path for path in _lxc_cgroups(names) if os.path.isdir(path)}
    compat_env = dict(os.environ)
    compat_env["PYTHONPATH"] = str(REPOSITORY)
    # The system interpreter must not find this venv's packages, nor coverage's start-up hook.
    real_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COVERAGE", "VIRTUAL_ENV"))}

    def run(script: str, name: str, *extra: str, also: tuple[str, ...] = ()) -> tuple[Run, Run]:
        """``extra``: more arguments for the script (the same on both sides); ``also``: the names of
        the other containers it makes, destroyed at teardown too."""
        for each in (name, *also):
            assert each in names, "a container name whose LXC cgroups the teardown removes"
            made.append(each)
        real = _run(python3_lxc, script, "lxc", str(real_path), name, extra, real_env)
        compat = _run(sys.executable, script, "compat", lxcpath, name, extra, compat_env)
        return real, compat

    yield run
    for name in reversed(made):  # what a script made after its container (an overlay clone) goes first
        _destroy_lxc(str(real_path), name)
        _destroy_lxcframe(lxcpath, name)
    for path in _lxc_cgroups(names) - cgroups_before:
        _remove_cgroup_tree(path)
    shutil.rmtree(real_path, ignore_errors=True)
    host.assert_clean()
