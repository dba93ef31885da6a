"""get_cgroup_item and set_cgroup_item beyond pids.max: other controllers' files, values of several
lines, keys that name no file, writes the kernel refuses, a frozen and a stopped container.

The files are cgroup1's where the host mounts the controllers there (cpu, memory, freezer), else the
unified hierarchy's; the labels do not name them, so both layouts record the same calls."""

import os
import sys

from prepare import busybox
from recorder import Recorder, load_lxc

mode, lxcpath, name = sys.argv[1:4]
lxc = load_lxc(mode)
rec = Recorder()
c = busybox(lxc, rec, name, lxcpath)

if os.path.exists("/sys/fs/cgroup/memory/memory.limit_in_bytes"):
    CPU, CPU_MIN, CPU_DEFAULT, MEMORY, FREEZER, FROZEN, THAWED = (
        "cpu.shares", "1", "1024", "memory.limit_in_bytes", "freezer.state", "FROZEN", "THAWED")
else:
    CPU, CPU_MIN, CPU_DEFAULT, MEMORY, FREEZER, FROZEN, THAWED = (
        "cpu.weight", "0", "100", "memory.max", "cgroup.freeze", "1", "0")

rec.call("memory limit of a stopped container", c.get_cgroup_item, MEMORY)
rec.call("set on a stopped container", c.set_cgroup_item, "pids.max", "10")
rec.call("start", c.start)
rec.call("wait running", c.wait, "RUNNING", 10)

rec.call("cpu weight", c.get_cgroup_item, CPU)
rec.call("set cpu weight", c.set_cgroup_item, CPU, "512")
rec.call("cpu weight after", c.get_cgroup_item, CPU)
rec.call("set cpu weight to the kernel's edge", c.set_cgroup_item, CPU, CPU_MIN)
rec.call("cpu weight at the edge", c.get_cgroup_item, CPU)
# Back to the default at once: at the edge the container gets almost no CPU on a busy host, and what
# follows (a freeze that waits for every task, a stop) would wait for it for minutes.
rec.call("cpu weight back to the default", c.set_cgroup_item, CPU, CPU_DEFAULT)
rec.call("set memory limit", c.set_cgroup_item, MEMORY, "67108864")
rec.call("memory limit after", c.get_cgroup_item, MEMORY)
rec.call("a limit with a unit", c.set_cgroup_item, MEMORY, "128M")
rec.call("read as bytes", c.get_cgroup_item, MEMORY)
rec.call("first words of cpu.stat's lines",
         lambda: [line.split()[0] for line in c.get_cgroup_item("cpu.stat").split("\n")])
rec.call("pids.current counts init", lambda: int(c.get_cgroup_item("pids.current")) >= 1)

rec.call("a value the kernel refuses", c.set_cgroup_item, MEMORY, "lots")
rec.call("unchanged after it", c.get_cgroup_item, MEMORY)
rec.call("a negative pids.max", c.set_cgroup_item, "pids.max", "-1")
rec.call("a read-only file", c.set_cgroup_item, "pids.current", "1")
rec.call("missing file of a mounted controller", c.get_cgroup_item, "memory.nosuch")
rec.call("write to a missing file", c.set_cgroup_item, "memory.nosuch", "1")
rec.call("a controller not mounted", c.get_cgroup_item, "hugetlb.2MB.limit_in_bytes")
rec.call("no controller prefix", c.get_cgroup_item, "nosuch")
rec.call("an empty key", c.get_cgroup_item, "")

rec.call("freeze", c.freeze)
rec.value("state frozen", c.state)
rec.call("freezer state while frozen", lambda: c.get_cgroup_item(FREEZER) == FROZEN)
rec.call("a limit while frozen", c.set_cgroup_item, "pids.max", "50")
rec.call("read while frozen", c.get_cgroup_item, "pids.max")
rec.call("unfreeze", c.unfreeze)
rec.value("state thawed", c.state)
rec.call("freezer thawed", lambda: c.get_cgroup_item(FREEZER) == THAWED)

rec.call("stop", c.stop)
rec.call("read after stop", c.get_cgroup_item, "pids.max")
rec.call("write after stop", c.set_cgroup_item, "pids.max", "10")
rec.call("start again", c.start)
rec.call("wait running again", c.wait, "RUNNING", 10)
rec.call("a fresh cgroup: pids.max", c.get_cgroup_item, "pids.max")
rec.call("a fresh cgroup: memory limit", lambda: c.get_cgroup_item(MEMORY) != "67108864")
rec.call("stop again", c.stop)
rec.call("destroy", c.destroy)
rec.dump()
