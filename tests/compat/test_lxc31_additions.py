"""What LXC 3.1 has and python3-lxc never bound, under the names the compat module gives them:
has_api_extension, config_item_is_supported, mount/umount (0 or a negative errno), console_log,
reboot2. No reference to compare with: each is checked against the container itself."""

import errno
import os
import time

import pytest

import lxcframe.compat.lxc as lxc


def test_api_extensions_and_supported_keys():
    assert lxc.has_api_extension("mount_injection") is True
    assert lxc.has_api_extension("console_log") is True
    assert lxc.has_api_extension("no_such_extension") is False
    assert lxc.config_item_is_supported("lxc.uts.name") is True
    assert lxc.config_item_is_supported("lxc.net.0.ipv4.address") is True
    assert lxc.config_item_is_supported("lxc.rootfs") is False  # LXC 2's key, refused since 3.0
    assert lxc.config_item_is_supported("lxc.nosuch") is False


def _inside(container, command):
    read, write = os.pipe()
    status = container.attach_wait(lxc.attach_run_command, ["sh", "-c", command], stdout=write)
    os.close(write)
    with os.fdopen(read) as pipe:
        return status, pipe.read()


@pytest.fixture
def running(lxcpath, host):
    container = lxc.Container("compat-31", lxcpath)
    assert container.set_config_item("lxc.net.0.type", "empty")
    assert container.set_config_item("lxc.console.buffer.size", "auto")
    assert container.create("busybox")
    with open(os.path.join(lxcpath, "compat-31", "rootfs", "etc", "inittab"), "w") as inittab:
        inittab.write("::sysinit:/bin/echo compat-console-line\n::respawn:/bin/sleep 2147483647\n")
    yield container
    container.stop()
    assert container.destroy()
    host.assert_clean()


def test_mount_and_umount_return_zero_or_a_negative_errno(running, source_dir):
    assert running.mount(str(source_dir), "/mnt/injected") == -errno.EINVAL  # not running yet
    assert running.start()
    assert running.mount(str(source_dir), "/mnt/injected") == 0
    assert _inside(running, "cat /mnt/injected/hello") == (0, "injected\n")
    assert running.mount("/no/such/source", "/mnt/other") == -errno.ENOENT
    assert running.umount("/mnt/injected") == 0
    assert _inside(running, "cat /mnt/injected/hello 2>/dev/null") == (1 << 8, "")


def test_console_log_reads_and_clears_the_ring_buffer(running):
    assert running.console_log(read=True) is False  # not running
    assert running.start()
    deadline = time.monotonic() + 10
    while "compat-console-line" not in (text := running.console_log(read=True)) and time.monotonic() < deadline:
        time.sleep(0.05)  # init writes the line once it runs its sysinit action
    assert "compat-console-line" in text
    assert running.console_log(read=True, read_max=7) == text[:7]
    assert running.console_log(clear=True) is True
    assert running.console_log(read=True) == ""


def test_reboot2_waits_for_the_new_init(running):
    assert running.reboot2(1) is False  # not running
    assert running.set_config_item("lxc.signal.reboot", "SIGTERM")  # busybox init reboots on it
    assert running.save_config()
    assert running.start()
    before = running.init_pid
    assert running.reboot2(30) is True
    assert running.state == "RUNNING"
    assert running.init_pid not in (-1, before)
