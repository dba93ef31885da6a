"""Plugin console: /dev/console and ttys from the container's devpts, the log, and `lxcframe console`."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest

from lxcframe.container import Container

from .conftest import run_cli

pytestmark = pytest.mark.container


def write_inittab(container: Container, text: str) -> None:
    rootfs = container.load_config().get("lxc.rootfs.path")
    with open(os.path.join(rootfs, "etc/inittab"), "w") as handle:
        handle.write(text)


def inside(container: Container, script: str) -> str:
    rootfs = container.load_config().get("lxc.rootfs.path")
    assert container.attach_wait(["/bin/sh", "-c", f"({script}) > /.out 2>&1"]) == 0
    with open(os.path.join(rootfs, ".out")) as handle:
        text = handle.read()
    os.unlink(os.path.join(rootfs, ".out"))
    return text


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def read_until(fd: int, needle: bytes, timeout: float = 10.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


def test_init_output_reaches_logfile_and_ring_buffer(make_container, tmp_path):
    logfile = tmp_path / "console.log"
    container = make_container("con1", config=(
        ("lxc.console.logfile", str(logfile)),
        ("lxc.console.buffer.size", "auto"),
    ))
    write_inittab(container, "::sysinit:/bin/echo hello-console\n::respawn:/bin/sleep 2147483647\n")
    assert container.has_api_extension("console_log")
    container.start()
    assert wait_for(lambda: "hello-console" in container.console_log())
    assert wait_for(lambda: logfile.exists() and "hello-console" in logfile.read_text())
    assert "hello-console" in container.console_log(clear=True)
    assert container.console_log() == ""
    out = inside(container, "ls -l /proc/1/fd/1; ls /dev/pts; test -c /dev/console && echo console-ok")
    assert "console-ok" in out
    container.stop(kill=True)


def test_tty_max_makes_ptys_of_the_container_devpts(make_container):
    container = make_container("con2", config=(("lxc.tty.max", "2"),))
    container.start()
    out = inside(container, "for f in /dev/console /dev/tty1 /dev/tty2; do stat -c '%n %F %t' $f; done; "
                            "ls /dev/pts; stat -c '%t:%T' /dev/tty1 /dev/tty2 /dev/pts/1 /dev/pts/2")
    lines = out.splitlines()
    for name in ("/dev/console", "/dev/tty1", "/dev/tty2"):
        assert f"{name} character special file 88" in lines, out  # major 136: a pty slave
    pts = out.split()
    assert "0" in pts and "1" in pts and "2" in pts
    tty1, tty2, pts1, pts2 = lines[-4:]
    assert (tty1, tty2) == (pts1, pts2), out  # the ttys are the container's own /dev/pts/1 and 2
    container.stop(kill=True)


def test_tty_dir_puts_ttys_below_dev_dir_with_symlinks(make_container):
    container = make_container("con3", config=(("lxc.tty.max", "1"), ("lxc.tty.dir", "lxc")))
    container.start()
    out = inside(container, "readlink /dev/tty1; readlink /dev/console; stat -c '%F' /dev/lxc/tty1 /dev/lxc/console")
    assert out.split("\n")[:2] == ["lxc/tty1", "lxc/console"]
    assert out.count("character special file") == 2
    container.stop(kill=True)


def test_console_cli_types_into_a_shell_and_detaches(make_container, lxcpath):
    container = make_container("con4", config=(("lxc.tty.max", "1"),))
    write_inittab(container, "tty1::respawn:/bin/sh\n")
    container.start()
    primary, secondary = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lxcframe", "-P", lxcpath, "console", "con4", "-t", "1"],
                            stdin=secondary, stdout=secondary, stderr=secondary, start_new_session=True)
    os.close(secondary)
    try:
        assert b"Connected to tty 1" in read_until(primary, b"Connected to tty 1")
        # Our terminal is raw once the prompt arrives; the shell's line editing may ask where the
        # cursor is (ESC[6n) and take what comes first as the answer, so type until it runs.
        read_until(primary, b"# ")
        seen = b""
        for _ in range(5):
            os.write(primary, b"echo mark-$((6*7))\r")
            seen += read_until(primary, b"mark-42", timeout=2)
            if b"mark-42" in seen:
                break
        assert b"mark-42" in seen
        os.write(primary, b"\x01q")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    assert container.running
    # The tty is free again: a second client gets it.
    fd = container.console_getfd(1)
    container.console_release(fd)
    container.stop(kill=True)


def test_console_path_none_means_no_console(make_container):
    container = make_container("con5", config=(("lxc.console.path", "none"),))
    container.start()
    assert "absent" in inside(container, "test -e /dev/console || echo absent")
    from lxcframe.errors import ContainerError

    with pytest.raises(ContainerError, match="has no console"):
        container.console_log()
    container.stop(kill=True)


def test_bad_values_name_file_and_line(make_container):
    container = make_container("con6")
    path = container.config_file_name
    with open(path, "a") as handle:
        handle.write("lxc.console.buffer.size = lots\n")
    with open(path) as handle:
        lines = handle.read().count("\n")
    result = run_cli("-P", container.lxcpath, "config", "validate", path)
    assert result.returncode == 1
    assert f"{path}:{lines}:" in result.stderr and "lxc.console.buffer.size" in result.stderr


def test_disabled_plugin_reports_its_keys(tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("lxc.uts.name = a\nlxc.tty.max = 2\n")
    result = run_cli("-p", "no:console", "config", "validate", str(path))
    assert result.returncode == 1, "a key no enabled plugin applies is refused, as LXC refuses it"
    assert f"{path}:2: lxc.tty.max" in result.stderr and "plugin 'console', which is disabled" in result.stderr
