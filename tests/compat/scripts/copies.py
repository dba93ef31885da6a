"""clone, rename and snapshots of a stopped container, and cgroup items of a running one."""

import os
import sys

from prepare import busybox
from recorder import Recorder, load_lxc

mode, lxcpath, name = sys.argv[1:4]
lxc = load_lxc(mode)
rec = Recorder()
c = busybox(lxc, rec, name, lxcpath)

rec.call("cgroup item of a stopped container", c.get_cgroup_item, "pids.max")
rec.call("start", c.start)
rec.call("wait running", c.wait, "RUNNING", 10)
rec.call("pids.max", c.get_cgroup_item, "pids.max")
rec.call("set pids.max", c.set_cgroup_item, "pids.max", "100")
rec.call("pids.max after", c.get_cgroup_item, "pids.max")
rec.call("an invalid value", c.set_cgroup_item, "pids.max", "lots")
rec.call("no such file", c.get_cgroup_item, "nosuch.file")
rec.call("clone of a running container", c.clone, "compat-copy", config_path=lxcpath)
rec.call("stop", c.stop)

copy = rec.call("clone", c.clone, "compat-copy")
rec.value("a Container", type(copy).__name__)
rec.value("looked up in the default lxcpath", copy.defined)
copy = lxc.Container("compat-copy", lxcpath)
rec.value("defined in the source's lxcpath", copy.defined)
rec.call("its uts.name", copy.get_config_item, "lxc.uts.name")
rec.call("rootfs copied", lambda: os.path.isfile(f"{lxcpath}/compat-copy/rootfs/bin/busybox"))
kept = rec.call("clone keeping the name", c.clone, "compat-copy2", config_path=lxcpath, flags=lxc.LXC_CLONE_KEEPNAME)
rec.call("its uts.name", kept.get_config_item, "lxc.uts.name")
rec.call("clone over an existing one", c.clone, "compat-copy2", config_path=lxcpath)
def layers(container):
    """An overlay rootfs's lower and upper directories below lxcpath (liblxc's getter drops the
    ``overlay:`` prefix, lxcframe reads the value back as written)."""
    value = container.get_config_item("lxc.rootfs.path")
    for prefix in ("overlay:", "overlayfs:"):
        value = value.removeprefix(prefix)
    lower, upper = value.split(":")
    return os.path.relpath(lower, lxcpath), os.path.relpath(upper, lxcpath).split("/")[0]


ovl = rec.call("overlayfs snapshot clone", c.clone, "compat-copy3", config_path=lxcpath, flags=lxc.LXC_CLONE_SNAPSHOT,
               bdevtype="overlayfs")
rec.call("its layers: the source's rootfs, its own directory", layers, ovl)
rec.call("overlayfs without the snapshot flag", c.clone, "compat-copy4", config_path=lxcpath, bdevtype="overlayfs")
rec.value("not made", lxc.Container("compat-copy4", lxcpath).defined)
rec.call("an unknown bdevtype", c.clone, "compat-copy5", config_path=lxcpath, bdevtype="nosuchfs")
rec.call("destroy the overlay clone", ovl.destroy)
rec.call("hookargs not a tuple", c.clone, "compat-copy3", config_path=lxcpath, hookargs=["x"])

rec.call("snapshot_list, none", c.snapshot_list)
rec.call("snapshot", c.snapshot)
rec.call("another", c.snapshot)
rec.call("snapshot_list", lambda: [(n, os.path.relpath(comment, lxcpath), os.path.relpath(path, lxcpath), bool(ts))
                                   for n, comment, ts, path in c.snapshot_list()])
rec.call("destroy with snapshots", c.destroy)
rec.call("snapshot_destroy", c.snapshot_destroy, "snap1")
rec.call("snapshot_destroy again", c.snapshot_destroy, "snap1")
rec.call("snapshot_restore as a new container", c.snapshot_restore, "snap0", "compat-renamed")
rec.value("restored", lxc.Container("compat-renamed", lxcpath).defined)
rec.call("snapshot_destroy the last", c.snapshot_destroy, "snap0")
rec.call("snapshot_list of an undefined container", lxc.Container("nosuch", lxcpath).snapshot_list)

rec.call("destroy the restored one", lxc.Container("compat-renamed", lxcpath).destroy)
rec.call("destroy the copies", lambda: (copy.destroy(), kept.destroy()))
rec.call("destroy", c.destroy)
rec.dump()
