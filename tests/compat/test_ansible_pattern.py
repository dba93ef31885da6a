"""Ansible's way of driving containers, run unchanged through ``lxcframe.compat.lxc``.

community.general's ``lxc_container`` module shells out to ``lxc-create`` (here the ``lxcframe``
command line), binds ``lxc.Container(name=...)`` in the default lxcpath, starts it in a loop polling
``state``, runs its ``container_command`` through a Python callable that writes a script inside and
runs it with ``subprocess``, reports ``get_interfaces``/``get_ips``/``init_pid``, freezes and thaws,
and destroys in a loop until the name is gone from ``list_containers(config_path=...)``. Its ``lxc``
connection plugin execs each command with ``attach(attach_run_command, [sh, -c, cmd])``, a cleared
environment and pipes for stdin, stdout and stderr (read with ``select`` and reaped with
``os.waitpid``), and copies files in and out with Python callables over file objects opened on the
host. Smaller scripts wait for the network with ``get_ips(timeout=30)``, run ``attach_wait`` loops
and make clones with ``clone(..., flags=LXC_CLONE_SNAPSHOT, bdevtype="overlayfs")``.
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lxcframe.compat.lxc as lxc

pytestmark = pytest.mark.container

NAME, CLONE = "ansible-web", "ansible-web-snap"
ADDRESS = "192.0.2.10"
CLEARED_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: What ansible's lxc_container writes for ``container_command`` (its SCRIPT_TEMPLATE, with sh for
#: bash, which busybox lacks).
SCRIPT_TEMPLATE = """#!/bin/sh
# Ansible lxc_container generated script
%(container_command)s
"""


def create_script(command: str) -> None:
    """ansible's ``create_script``, the callable ``lxc_container`` attaches: runs in the container,
    with the caller's interpreter (tempfile, subprocess) and the container's files."""
    import tempfile

    fd, script_file = tempfile.mkstemp(prefix="lxc-attach-script", dir="/tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write((SCRIPT_TEMPLATE % {"container_command": command}).encode())
    os.chmod(script_file, 0o700)
    stdout_fd, _ = tempfile.mkstemp(prefix="lxc-attach-script-log", dir="/tmp")
    stderr_fd, _ = tempfile.mkstemp(prefix="lxc-attach-script-err", dir="/tmp")
    with os.fdopen(stdout_fd, "ab") as stdout_file, os.fdopen(stderr_fd, "ab") as stderr_file:
        try:
            subprocess.Popen([script_file], stdout=stdout_file, stderr=stderr_file).communicate()
        finally:
            os.remove(script_file)


class Connection:
    """The ``lxc`` connection plugin's exec_command, put_file and fetch_file, as it calls them."""

    def __init__(self, name: str) -> None:
        self.container = lxc.Container(name)  # the plugin knows no lxcpath: the default one
        if self.container.state == "STOPPED":
            raise RuntimeError(f"{name} is not running")

    def exec_command(self, cmd: str, in_data: bytes | None = None) -> tuple[int, bytes, bytes]:
        # The plugin also makes its pipes' container ends non-blocking, which a command writing more
        # than a pipe holds meets as EAGAIN; only the reading here needs select.
        read_stdout, write_stdout = os.pipe()
        read_stderr, write_stderr = os.pipe()
        options: dict[str, int] = {"stdout": write_stdout, "stderr": write_stderr,
                                   "env_policy": lxc.LXC_ATTACH_CLEAR_ENV}
        read_stdin = write_stdin = None
        if in_data:
            read_stdin, write_stdin = os.pipe()
            options["stdin"] = read_stdin
        pid = self.container.attach(lxc.attach_run_command, ["/bin/sh", "-c", cmd], **options)
        os.close(write_stdout)
        os.close(write_stderr)
        if read_stdin is not None:
            os.close(read_stdin)
        assert pid > 0, f"failed to attach to container ({pid})"
        return self._communicate(pid, in_data, write_stdin, read_stdout, read_stderr)

    @staticmethod
    def _communicate(pid: int, in_data: bytes | None, stdin: int | None, stdout: int,
                     stderr: int) -> tuple[int, bytes, bytes]:
        buf: dict[int, list[bytes]] = {stdout: [], stderr: []}
        read_fds, write_fds = [stdout, stderr], [stdin] if in_data and stdin is not None else []
        while read_fds or write_fds:
            ready_reads, ready_writes, _ = select.select(read_fds, write_fds, [])
            for fd in ready_writes:
                in_data = in_data[os.write(fd, in_data):] if in_data else b""
                if not in_data:
                    write_fds.remove(fd)
                    os.close(fd)  # the command reads to the end of its input
            for fd in ready_reads:
                data = os.read(fd, 32768)
                if not data:
                    read_fds.remove(fd)
                buf[fd].append(data)
        _, returncode = os.waitpid(pid, 0)
        os.close(stdout)
        os.close(stderr)
        return returncode, b"".join(buf[stdout]), b"".join(buf[stderr])

    def put_file(self, in_path: str, out_path: str) -> int:
        with open(in_path, "rb") as src_file:
            def write_file(args: object) -> None:
                with open(out_path, "wb+") as dst_file:
                    shutil.copyfileobj(src_file, dst_file)

            return self.container.attach_wait(write_file, None)

    def fetch_file(self, in_path: str, out_path: str) -> int:
        with open(out_path, "wb+") as dst_file:
            def write_file(args: object) -> None:
                with open(in_path, "rb") as src_file:
                    shutil.copyfileobj(src_file, dst_file)

            return self.container.attach_wait(write_file, None)


def attach_wait_output(container: lxc.Container, argv: list[str], stdin: bytes = b"") -> tuple[int, str, str]:
    """One ``attach_wait`` with a cleared environment and pipes on all three descriptors (input small
    enough to sit in its pipe before the command starts, output read once it ended)."""
    read_stdin, write_stdin = os.pipe()
    read_stdout, write_stdout = os.pipe()
    read_stderr, write_stderr = os.pipe()
    os.write(write_stdin, stdin)
    os.close(write_stdin)
    try:
        status = container.attach_wait(lxc.attach_run_command, argv, env_policy=lxc.LXC_ATTACH_CLEAR_ENV,
                                       stdin=read_stdin, stdout=write_stdout, stderr=write_stderr)
    finally:
        for fd in (read_stdin, write_stdout, write_stderr):
            os.close(fd)
    with os.fdopen(read_stdout) as out, os.fdopen(read_stderr) as err:
        return status, out.read(), err.read()


@pytest.fixture
def ansible_host(tmp_path, lxcpath, rundir, monkeypatch):
    """The host as ansible finds it: the lxcpath is the default one (the connection plugin binds
    ``Container(name)``), new containers below this test's cgroup."""
    defaults = tmp_path / "ansible-default.conf"
    defaults.write_text("lxc.cgroup.relative = 1\n")
    config = tmp_path / "ansible-lxcframe.toml"
    config.write_text(f'lxcpath = "{lxcpath}"\ndefault_config = "{defaults}"\n')
    monkeypatch.setenv("LXCFRAME_HOST_CONFIG", str(config))
    monkeypatch.setenv("ANSIBLE_ONLY_ON_THE_HOST", "1")  # what LXC_ATTACH_CLEAR_ENV must not pass on
    return lxcpath


def _exists(name: str, lxcpath: str) -> bool:
    """ansible's ``_container_exists``."""
    return name in lxc.list_containers(config_path=lxcpath)


def _destroyed(container: lxc.Container, name: str, lxcpath: str, tries: int = 60) -> int:
    """ansible's ``_destroyed``: stop and destroy until the name is no longer listed; the passes it took."""
    for attempt in range(tries):
        if not _exists(name, lxcpath):
            return attempt
        if container.state.lower() != "stopped":
            container.stop()
        container.destroy()
    raise AssertionError(f"{name} still listed after {tries} passes")


def _startup(container: lxc.Container, tries: int = 60) -> int:
    """ansible's ``_container_startup``: start until ``state`` says running; the passes it took."""
    for attempt in range(tries):
        if container.state.lower() == "running":
            return attempt
        container.start()
        container.wait("RUNNING", 1)
    raise AssertionError(f"{container.name} not running after {tries} passes")


@pytest.fixture
def cleanup(ansible_host, host):
    yield
    from lxcframe.container import Container as Native

    for name in (CLONE, NAME):  # the overlay clone before the container whose rootfs it lies over
        native = Native(name, ansible_host)
        if native.defined:
            native.destroy(force=True)
    host.assert_clean()


def test_ansible_usage_runs_through_the_compat_module(ansible_host, cleanup, tmp_path):
    lxcpath = ansible_host
    config = tmp_path / "container.conf"  # lxc_container's ``config`` option, given to lxc-create -f
    config.write_text(f"lxc.net.0.type = veth\nlxc.net.0.flags = up\nlxc.net.0.name = eth0\n"
                      f"lxc.net.0.ipv4.address = {ADDRESS}/24\n")
    assert not _exists(NAME, lxcpath)
    created = subprocess.run([str(Path(sys.executable).parent / "lxcframe"), "-P", lxcpath, "create", NAME,
                              "-t", "busybox", "-f", str(config)], capture_output=True, text=True, timeout=120,
                             check=False)
    assert created.returncode == 0, created.stderr
    assert _exists(NAME, lxcpath)

    container = lxc.Container(name=NAME)
    assert container.config_file_name == f"{lxcpath}/{NAME}/config"
    assert container.state.lower() == "stopped"
    # lxc_container edits the file in place with regexes, and the next bind reads it.
    with open(container.config_file_name, "a") as handle:
        handle.write("lxc.environment = DEPLOYED_BY=ansible\n")
    container = lxc.Container(name=NAME)
    assert container.get_config_item("lxc.environment") == ["DEPLOYED_BY=ansible"]
    assert _startup(container) == 1  # started on the first pass, seen running on the second
    assert container.init_pid > 1

    started = time.monotonic()
    assert container.get_ips(timeout=30) == (ADDRESS,)
    assert time.monotonic() - started < 5
    assert sorted(container.get_interfaces()) == ["eth0", "lo"]

    # The connection plugin's exec: a cleared environment with LXC's PATH, the config's environment,
    # the payload on stdin, stdout and stderr apart, the raw wait status.
    connection = Connection(NAME)
    status, out, err = connection.exec_command("env; echo to-stderr >&2; exit 3")
    assert (status, err) == (3 << 8, b"to-stderr\n")
    env = out.decode().splitlines()
    assert {CLEARED_PATH, "container=lxc", "DEPLOYED_BY=ansible"} <= set(env)
    assert not [line for line in env if line.startswith("ANSIBLE_ONLY_ON_THE_HOST")]
    payload = os.urandom(300_000)  # more than a pipe holds, both ways
    assert connection.exec_command("cat > /root/payload && cat /root/payload", payload) == (0, payload, b"")

    # put_file and fetch_file: callables over file objects opened on the host. Their callable returns
    # None, which python3-lxc makes exit 255 and attach_wait -1; ansible only looks for an IOError.
    module = tmp_path / "module.py"
    module.write_bytes(b"#!/bin/sh\necho module-ran\n" + b"# padding\n" * 20_000)
    assert connection.put_file(str(module), "/root/module.sh") == -1
    assert connection.exec_command("md5sum /root/module.sh | cut -d' ' -f1") == (
        0, hashlib.md5(module.read_bytes()).hexdigest().encode() + b"\n", b"")
    fetched = tmp_path / "fetched"
    assert connection.fetch_file("/root/payload", str(fetched)) == -1
    assert fetched.read_bytes() == payload

    # lxc_container's container_command: a callable writing a script inside and running it.
    assert container.attach_wait(create_script, "echo from-script > /root/script-output") == -1  # None: 255
    results = [attach_wait_output(container, argv, stdin) for argv, stdin in (
        (["cat", "/root/script-output"], b""),
        (["sh", "-c", "tr a-z A-Z"], b"piped in\n"),
        (["sh", "-c", "echo $PATH; echo $ANSIBLE_ONLY_ON_THE_HOST; ls /tmp | grep -c lxc-attach-script"], b""),
        (["sh", "-c", "echo nope >&2; exit 4"], b""),
        (["/no/such/program"], b""),
    )]
    assert results == [
        (0, "from-script\n", ""),
        (0, "PIPED IN\n", ""),
        (0, CLEARED_PATH.removeprefix("PATH=") + "\n\n2\n", ""),  # the script's two log files stay
        (4 << 8, "", "nope\n"),
        (127 << 8, "", ""),
    ]

    assert container.freeze() is True
    assert container.state.lower() == "frozen"
    assert container.unfreeze() is True
    assert container.state.lower() == "running"
    assert attach_wait_output(container, ["true"]) == (0, "", "")

    # A snapshot clone over overlayfs, of the stopped container: it sees the files put before.
    assert container.stop() is True
    clone = container.clone(CLONE, flags=lxc.LXC_CLONE_SNAPSHOT, bdevtype="overlayfs")
    assert isinstance(clone, lxc.Container) and clone.defined
    assert clone.get_config_item("lxc.rootfs.path").startswith("overlay:")
    assert _startup(clone) == 1
    assert clone.get_ips(timeout=30) == (ADDRESS,)  # its own network namespace, the same config
    assert attach_wait_output(clone, ["sh", "-c", "cat /root/script-output; echo clone-only > /root/new"]) == (
        0, "from-script\n", "")
    assert not os.path.exists(f"{lxcpath}/{NAME}/rootfs/root/new")  # written to the clone's upper layer
    assert clone.stop() is True

    assert _destroyed(clone, CLONE, lxcpath) == 1
    assert _destroyed(container, NAME, lxcpath) == 1
    assert lxc.list_containers(config_path=lxcpath) == ()
    assert not os.path.exists(f"{lxcpath}/{NAME}")
