"""reboot(): init is sent lxc.signal.reboot (both busybox templates set SIGTERM, on which busybox's
init reboots), and the container comes back with a new init, waited for by the script."""

import os
import sys
import time

from prepare import busybox
from recorder import Recorder, load_lxc

mode, lxcpath, name = sys.argv[1:4]
lxc = load_lxc(mode)
rec = Recorder()
c = busybox(lxc, rec, name, lxcpath)
run = lxc.attach_run_command


def back_with_a_new_init(before, timeout=30):
    """Until init_pid is another process's and the container is RUNNING again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = c.init_pid
        if pid not in (-1, before) and c.wait("RUNNING", 1):
            return True
        time.sleep(0.05)
    return False


def marker_kept():
    """What init's reboot kept: the rootfs (a file written before it), read by an attached command."""
    read, write = os.pipe()
    status = c.attach_wait(run, ["cat", "/root/before-reboot"], stdout=write)
    os.close(write)
    with os.fdopen(read) as pipe:
        return status, pipe.read()


rec.call("reboot stopped", c.reboot)
rec.call("start", c.start)
rec.call("wait running", c.wait, "RUNNING", 10)
first = c.init_pid
rec.value("init_pid positive", first > 1)
rec.call("write a marker", c.attach_wait, run, ["sh", "-c", "echo kept > /root/before-reboot"])
rec.call("reboot", c.reboot)
rec.call("back with a new init", back_with_a_new_init, first)
second = c.init_pid
rec.value("state after reboot", c.state)
rec.value("running after reboot", c.running)
rec.value("init_pid another process", second > 1 and second != first)
rec.value("the old init gone", not os.path.exists(f"/proc/{first}"))
rec.call("the rootfs kept", marker_kept)
rec.call("attach after reboot", c.attach_wait, run, ["sh", "-c", "exit 5"])
rec.call("reboot again", c.reboot)
rec.call("back again", back_with_a_new_init, second)
rec.value("a third init", c.init_pid not in (-1, first, second))
rec.call("stop", c.stop)
rec.call("wait stopped", c.wait, "STOPPED", 10)
rec.value("init_pid after stop", c.init_pid)
rec.call("reboot after stop", c.reboot)
rec.value("still stopped", c.state)
rec.call("destroy", c.destroy)
rec.dump()
