"""A user who is not root runs unprivileged containers: a real account with subordinate ids, a cgroup
delegated to it, and the command line run as that user (``runuser``) with its own defaults.

The account, its ``/etc/subuid`` and ``/etc/subgid`` lines, its home and the delegated cgroups are made
once for the module (they change /etc, which every test's host check compares) and removed at its end,
whatever happened. Each test leaves nothing of its own: its containers are destroyed and the user's
processes (the server its commands started) gone before its host check.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from .conftest import _own_cgroup_dirs

# Serial: it adds a user account and subordinate ids to /etc, which a concurrent shard's host check would see.
pytestmark = [pytest.mark.container, pytest.mark.serial]

CHECKOUT = str(Path(__file__).resolve().parent.parent)
COUNT = 65536
#: The files a delegatee writes to manage its subtree (the kernel's cgroup-v2.rst, "Delegation"; v1's tasks).
DELEGATION_FILES = ("cgroup.procs", "cgroup.subtree_control", "cgroup.threads", "tasks")


@attrs.frozen
class User:
    name: str
    uid: int
    gid: int
    home: str
    first: int  # its subuid and subgid range starts here
    python: str
    #: The delegated cgroup's directory in every hierarchy this process is in.
    delegated: tuple[str, ...]

    @property
    def lxcpath(self) -> str:
        return os.path.join(self.home, ".local", "share", "lxcframe")

    def env(self) -> list[str]:
        return ["env", "-i", f"HOME={self.home}", f"USER={self.name}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                f"XDG_RUNTIME_DIR={self.home}/run", f"PYTHONPATH={CHECKOUT}:{sysconfig.get_paths()['purelib']}",
                f"LXCFRAME_HOST_CONFIG={self.home}/no-host-config.toml", "LXCFRAME_SUPERVISOR_IDLE=0.2"]

    def run(self, *args: str, delegated: bool = True, server: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``lxcframe ARGS`` as this user, from a leaf of its delegated cgroup (as a login of a host
        that delegates would be) unless ``delegated`` is false: then from this test's own cgroups."""
        env = self.env() + ([] if server else ["LXCFRAME_SERVER=0", "LXCFRAME_SUPERVISOR=0"])
        command = ["runuser", "-u", self.name, "--", *env, self.python, "-m", "lxcframe", *args]
        if delegated:
            procs = " ".join(os.path.join(d, "caller", "cgroup.procs") for d in self.delegated)
            command = ["sh", "-c", f'for f in {procs}; do echo $$ > "$f" || exit 90; done; exec "$@"', "sh", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=self.home, stdin=subprocess.DEVNULL)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"lxcframe {' '.join(args)}: {done.stderr}"
        return done.stdout

    def owns(self, uid: int) -> bool:
        """Whether host uid ``uid`` is this user's own or one of its subordinate ids (never root's)."""
        assert self.uid > 0 and self.first > 0
        return uid == self.uid or self.first <= uid < self.first + COUNT

    def processes(self) -> list[int]:
        """The processes running as this user or as one of its containers' ids."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if self.owns(os.stat(f"/proc/{entry}").st_uid):
                        found.append(int(entry))
        return found

    def wait_for_no_processes(self, timeout: float = 10.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return left


def _interpreter(name: str, env: list[str]) -> str:
    """This test's Python if the user may run it, else the system's of the same version: the venv's
    interpreter may live below a directory only root may enter."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/python{version}"):
        probe = subprocess.run(["runuser", "-u", name, "--", *env, candidate, "-c", "import attrs, pluggy, lxcframe"],
                               capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    pytest.fail(f"no Python {version} the user {name} may run (install Debian's python{version})")


def _free_range() -> int:
    taken = []
    for path in ("/etc/subuid", "/etc/subgid"):
        with open(path) as handle:
            for line in handle:
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                    taken.append((int(fields[1]), int(fields[2])))
    first = 3_000_000 + (os.getpid() % 4096) * COUNT
    while any(first < start + count and start < first + COUNT for start, count in taken):
        first += COUNT
    return first


def _copy_cpuset(parent: str, child: str) -> None:
    for leaf in ("cpuset.cpus", "cpuset.mems"):
        if os.path.exists(os.path.join(child, leaf)):
            Path(child, leaf).write_text(Path(parent, leaf).read_text())


def _delegate(directory: str, uid: int, gid: int) -> None:
    os.chown(directory, uid, gid)
    for name in DELEGATION_FILES:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            os.chown(path, uid, gid)


def _remove_cgroup_tree(top: str) -> None:
    for directory, subdirs, _ in os.walk(top, topdown=False):
        for sub in subdirs:
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(os.path.join(directory, sub))
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(top)


def _without_lines_of(path: str, name: str) -> None:
    with open(path) as handle:
        lines = handle.readlines()
    kept = [line for line in lines if line.split(":", 1)[0] != name]
    if kept != lines:
        with open(path, "w") as handle:
            handle.writelines(kept)


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    """A fresh account with a subuid and subgid range and a delegated cgroup (an operator's steps)."""
    name = f"lxnr{os.getpid()}"
    home = tempfile.mkdtemp(prefix=f"lxcframe-{name}-", dir="/tmp")
    delegated: list[str] = []
    made_user = False
    first = 0
    try:
        # -K SUB_*_COUNT=0: useradd would allocate ranges of its own; the test grants exactly one.
        subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0",
                        name], check=True, capture_output=True)
        made_user = True
        info = pwd.getpwnam(name)
        first = _free_range()
        last = first + COUNT - 1
        subprocess.run(["usermod", "--add-subuids", f"{first}-{last}", "--add-subgids", f"{first}-{last}", name],
                       check=True, capture_output=True)
        os.chown(home, info.pw_uid, info.pw_gid)
        os.mkdir(os.path.join(home, "run"), 0o700)
        os.chown(os.path.join(home, "run"), info.pw_uid, info.pw_gid)
        for own in _own_cgroup_dirs():
            top = os.path.join(own, f"lxcframe-{name}")
            os.mkdir(top)
            delegated.append(top)
            _copy_cpuset(own, top)
            _delegate(top, info.pw_uid, info.pw_gid)
            # The leaf the user's commands run in: cgroup2 hands controllers down only from a cgroup
            # without processes, so a delegatee's own processes live in a leaf of its subtree.
            os.mkdir(os.path.join(top, "caller"))
            _copy_cpuset(top, os.path.join(top, "caller"))
            _delegate(os.path.join(top, "caller"), info.pw_uid, info.pw_gid)
        env = User(name, info.pw_uid, info.pw_gid, home, first, "", ()).env()
        yield User(name, info.pw_uid, info.pw_gid, home, first, _interpreter(name, env), tuple(delegated))
    finally:
        if made_user and first:
            probe = User(name, pwd.getpwnam(name).pw_uid, 0, home, first, "", ())
            for pid in probe.wait_for_no_processes(timeout=5):
                with contextlib.suppress(ProcessLookupError):
                    if probe.owns(os.stat(f"/proc/{pid}").st_uid):
                        os.kill(pid, 9)  # started by this module's commands, as this user or its containers
            probe.wait_for_no_processes(timeout=5)
        for top in delegated:
            _remove_cgroup_tree(top)
        if made_user:
            subprocess.run(["userdel", name], check=False, capture_output=True)
        for path in ("/etc/subuid", "/etc/subgid"):
            _without_lines_of(path, name)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def clean(user: User) -> Iterator[User]:
    """The user, and after the test: its containers destroyed and its processes (the server) gone."""
    yield user
    if os.path.isdir(user.lxcpath):
        for name in os.listdir(user.lxcpath):
            user.run("destroy", "-f", name)
    left = user.wait_for_no_processes()
    assert not left, f"processes of {user.name} left: {left}"


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command's one error line (a failed start's monitor also logs the failure at ERROR above it)."""
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("lxcframe: error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def _init_pid(user: User, name: str) -> int:
    for line in user.ok("info", name).splitlines():
        if line.startswith("Pid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Pid in the info of {name}")


def _cgroups_of(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cgroup") as handle:
        return [line.rstrip("\n").split(":", 2)[2] for line in handle]


def test_a_user_creates_starts_attaches_stops_and_destroys_a_busybox_container(clean: User) -> None:
    user = clean
    rows = json.loads(user.run("check", "--format", "json").stdout)
    row = next(r for r in rows if r["name"] == "idmap:subids")
    assert row["supported"] is True and f"uid {user.first}+{COUNT}" in row["detail"], row
    user.ok("create", "nr1", "-t", "busybox")
    config = Path(user.lxcpath, "nr1", "config").read_text()
    assert f"lxc.idmap = u 0 {user.first} {COUNT}" in config, "the user's subuid range maps the container's root"
    assert f"lxc.idmap = g 0 {user.first} {COUNT}" in config
    rootfs = Path(user.lxcpath, "nr1", "rootfs")
    for path in (rootfs, rootfs / "bin" / "busybox", rootfs / "etc" / "passwd"):
        info = os.lstat(path)
        assert (info.st_uid, info.st_gid) == (user.first, user.first), f"{path} belongs to the container's root"
    done = user.run("start", "nr1")
    assert (done.returncode, done.stderr) == (0, ""), "a start as the user needs nothing it cannot have"
    # Its own server (in its own run directory) started and monitors the container.
    assert os.path.exists(os.path.join(user.home, "run", "lxcframe", "supervisor.sock"))
    init = _init_pid(user, "nr1")
    with open(f"/proc/{init}/uid_map") as handle:
        assert handle.read().split() == ["0", str(user.first), str(COUNT)]
    with open(f"/proc/{init}/gid_map") as handle:
        assert handle.read().split() == ["0", str(user.first), str(COUNT)]
    with open(f"/proc/{init}/status") as handle:
        status = dict(line.split(":", 1) for line in handle)
    assert status["Uid"].split()[0] == str(user.first)
    # In every hierarchy, init sits in the container's cgroup below the delegated one.
    delegated_paths = {"/" + os.path.relpath(d, _mount_of(d)) for d in user.delegated}
    for path in _cgroups_of(init):
        assert any(path.startswith(f"{top}/lxc.payload.nr1") for top in delegated_paths), path
    out = user.ok("attach", "nr1", "--", "/bin/sh", "-c",
                  "id -u; cat /proc/self/uid_map; stat -c %u /bin/busybox; ls -l /dev/null; "
                  "echo hi > /root/x; cat /root/x")
    lines = out.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(user.first), str(COUNT)]
    assert lines[2] == "0"
    assert lines[3].startswith("crw-rw-rw-"), "the host's /dev/null bound in (no node can be made unprivileged)"
    assert lines[4] == "hi"
    assert os.stat(rootfs / "root" / "x").st_uid == user.first
    user.ok("stop", "nr1")
    for top in user.delegated:
        assert not [e for e in os.listdir(top) if e.startswith("lxc.")], f"the container's cgroups are gone from {top}"
    assert user.ok("execute", "nr1", "--", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map").split() == [
        "0", "0", str(user.first), str(COUNT)]
    user.ok("destroy", "nr1")
    assert not os.path.exists(os.path.join(user.lxcpath, "nr1"))
    assert os.stat(os.path.join(user.home, "run", "lxcframe")).st_uid == user.uid, "the run directory is the user's"


def _mount_of(directory: str) -> str:
    path = directory
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def test_a_users_refusals_are_one_line_naming_why(clean: User) -> None:
    user = clean
    user.ok("create", "nr2", "-t", "busybox")
    try:
        user.ok("config", "set", "nr2", "lxc.net.0.type", "veth")
        done = user.run("start", "nr2")
        assert done.stderr.count("\n") == 1, done.stderr
        assert "lxc.net.0.type: a non-root user cannot create a veth device on the host" in _error_line(done)
        user.ok("config", "set", "nr2", "lxc.net.0.type", "empty")
        # Without a delegated cgroup: the caller's own is this test's, which the user may not write.
        done = user.run("start", "nr2", delegated=False)
        assert f"no cgroup delegated to uid {user.uid}" in _error_line(done)
        # The same from a command that runs in its own process (no server of the user's takes it).
        done = user.run("start", "nr2", delegated=False, server=False)
        assert f"no cgroup delegated to uid {user.uid} in the" in _error_line(done)
        # A range /etc/subuid does not grant.
        user.ok("config", "set", "nr2", "lxc.idmap", "")
        config = Path(user.lxcpath, "nr2", "config")
        config.write_text(config.read_text() + "lxc.idmap = u 0 1000000000 10\nlxc.idmap = g 0 1000000000 10\n")
        done = user.run("start", "nr2")
        assert "lxc.idmap: u 0 1000000000 10 is not within /etc/subuid's ranges for this user" in _error_line(done)
        # No idmap at all.
        config.write_text("".join(line + "\n" for line in config.read_text().splitlines()
                                  if not line.startswith("lxc.idmap")))
        done = user.run("start", "nr2")
        assert "a non-root user's container needs lxc.idmap lines" in _error_line(done)
        # A rootfs the container's root does not own: no idmapped mount for a user.
        config.write_text(config.read_text() + f"lxc.idmap = u 0 {user.first} {COUNT}\n"
                          f"lxc.idmap = g 0 {user.first} {COUNT}\n")
        rootfs = Path(user.lxcpath, "nr2", "rootfs")
        os.chown(rootfs, user.uid, user.gid)
        done = user.run("start", "nr2")
        assert f"the rootfs {rootfs} belongs to uid {user.uid}, not to the container's root" in _error_line(done)
        os.chown(rootfs, user.first, user.first)
        for top in user.delegated:
            assert not [e for e in os.listdir(top) if e.startswith("lxc.")], f"a failed start unwound {top}"
    finally:
        user.run("destroy", "-f", "nr2")
    assert not os.path.exists(os.path.join(user.lxcpath, "nr2"))
