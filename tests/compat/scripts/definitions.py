"""What changes a container's definition: append_config_item on multi-valued keys,
get_running_config_item after the file changed, clear_config, snapshot_restore over the container
itself, and rename."""

import os
import sys

from prepare import busybox
from recorder import Recorder, load_lxc

mode, lxcpath, name = sys.argv[1:4]
new_name = name + "-new"
lxc = load_lxc(mode)
rec = Recorder()
c = busybox(lxc, rec, name, lxcpath)


def rootfs_of(container):
    """lxc.rootfs.path below lxcpath, without the backing store's prefix."""
    return os.path.relpath(container.get_config_item("lxc.rootfs.path").split(":", 1)[-1], lxcpath)


# append_config_item: multi-valued keys grow, a single one is replaced, an empty value clears. The two
# busybox templates set mount entries and capabilities of their own: the appended ones come last.
for value in ("A=1", "B=2"):
    rec.call(f"append environment {value}", c.append_config_item, "lxc.environment", value)
rec.call("environment", c.get_config_item, "lxc.environment")
for target in ("a", "b"):
    rec.call(f"append mount.entry {target}", c.append_config_item, "lxc.mount.entry",
             f"tmpfs mnt/{target} tmpfs defaults,create=dir 0 0")
rec.call("mount.entry", lambda: c.get_config_item("lxc.mount.entry")[-2:])
for capability in ("sys_module", "mac_admin"):
    rec.call(f"append cap.drop {capability}", c.append_config_item, "lxc.cap.drop", capability)
rec.call("cap.drop", lambda: c.get_config_item("lxc.cap.drop")[-2:])
rec.call("append hook", c.append_config_item, "lxc.hook.pre-start", "/bin/true")
rec.call("append another hook", c.append_config_item, "lxc.hook.pre-start", "/bin/echo")
rec.call("hooks", c.get_config_item, "lxc.hook.pre-start")
rec.call("append a single key", c.append_config_item, "lxc.uts.name", "first")
rec.call("append it again", c.append_config_item, "lxc.uts.name", "second")
rec.call("the last one", c.get_config_item, "lxc.uts.name")
rec.call("append an empty value", c.append_config_item, "lxc.cap.drop", "")
rec.call("cap.drop cleared", c.get_config_item, "lxc.cap.drop")
rec.call("append an unknown key", c.append_config_item, "lxc.nosuch.key", "1")
rec.call("save_config", c.save_config)
rec.call("a new object reads them", lambda: [lxc.Container(name, lxcpath).get_config_item(key)[-2:] for key in (
    "lxc.environment", "lxc.mount.entry", "lxc.cap.drop", "lxc.hook.pre-start", "lxc.uts.name")])

# get_running_config_item: what the container started with, whatever the file says since.
rec.call("start", c.start)
rec.call("wait running", c.wait, "RUNNING", 10)
rec.call("running uts.name", c.get_running_config_item, "lxc.uts.name")
rec.call("running environment", c.get_running_config_item, "lxc.environment")
rec.call("running mount.entry", lambda: c.get_running_config_item("lxc.mount.entry").split("\n")[-3:])
rec.call("running hooks", c.get_running_config_item, "lxc.hook.pre-start")
rec.call("running unset key", c.get_running_config_item, "lxc.init.cwd")
rec.call("set uts.name", c.set_config_item, "lxc.uts.name", "changed")
rec.call("save it", c.save_config)
with open(c.config_file_name, "a") as config:  # as ansible edits the file in place
    config.write("lxc.environment = C=3\nlxc.init.cwd = /tmp\n")
rec.call("the file changed", lambda: lxc.Container(name, lxcpath).get_config_item("lxc.environment"))
rec.call("running uts.name after", c.get_running_config_item, "lxc.uts.name")
rec.call("running environment after", c.get_running_config_item, "lxc.environment")
rec.call("running init.cwd after", c.get_running_config_item, "lxc.init.cwd")
rec.call("a new object's running config", lambda: lxc.Container(name, lxcpath).get_running_config_item(
    "lxc.uts.name"))
rec.call("stop", c.stop)
rec.call("running config once stopped", c.get_running_config_item, "lxc.uts.name")
# The object made before the file changed saves again: liblxc writes the whole config it holds, so the
# lines added since are lost; lxcframe writes its edits over the file as it is now (docs/compat.md).
rec.call("an object made before the change saves", c.save_config)
rec.call("the line added meanwhile kept", lambda: "C=3" in open(c.config_file_name).read())

# snapshot_restore over the container itself.
c = lxc.Container(name, lxcpath)  # bound again, as ansible does after an edit of the file
rec.call("snapshot", c.snapshot)
rec.call("start for restore", c.start)
rec.call("restore while running", c.snapshot_restore, "snap0")
rec.call("stop for restore", c.stop)
rec.call("write after the snapshot", lambda: open(f"{lxcpath}/{name}/rootfs/after-snapshot", "w").close())
rec.call("set uts.name after the snapshot", c.set_config_item, "lxc.uts.name", "after")
rec.call("save that", c.save_config)
rec.call("restore an unknown snapshot", c.snapshot_restore, "snap9")
rec.call("snapshot_restore in place", c.snapshot_restore, "snap0")
rec.value("the later file gone", os.path.exists(f"{lxcpath}/{name}/rootfs/after-snapshot"))
rec.value("the rootfs there", os.path.isfile(f"{lxcpath}/{name}/rootfs/bin/busybox"))
restored = lxc.Container(name, lxcpath)
rec.call("its uts.name after the restore", restored.get_config_item, "lxc.uts.name")
rec.call("its rootfs", rootfs_of, restored)
rec.call("the snapshot kept", lambda: [snap[0] for snap in restored.snapshot_list()])
rec.call("it starts", restored.start)
rec.call("wait running after restore", restored.wait, "RUNNING", 10)
rec.call("stop it", restored.stop)
# liblxc refuses to rename a container with snapshots; lxcframe moves them with it (docs/compat.md).
moved_with_snapshots = rec.call("rename with a snapshot", lxc.Container(name, lxcpath).rename, new_name)
if moved_with_snapshots:
    lxc.Container(new_name, lxcpath).rename(name)
rec.call("snapshot_destroy", lxc.Container(name, lxcpath).snapshot_destroy, "snap0")

# clear_config, then the file loaded again.
other = lxc.Container(name, lxcpath)
rec.call("clear_config", other.clear_config)
rec.value("still defined", other.defined)
rec.call("append after clear_config", other.append_config_item, "lxc.environment", "X=1")
rec.call("only what was appended", lambda: (other.get_config_item("lxc.environment"),
                                            other.get_config_item("lxc.uts.name")))
rec.call("load_config", other.load_config)
rec.call("the file's entries after it", lambda: (other.get_config_item("lxc.environment")[:3],
                                                 other.get_config_item("lxc.uts.name"), rootfs_of(other)))

# rename: a stopped container without snapshots moves; python3-lxc's object looks in the default lxcpath.
c = lxc.Container(name, lxcpath)
# A refused rename leaves liblxc's object unable to rename at all: each refusal gets an object of its own.
rec.call("start for rename", c.start)
rec.call("rename while running", lxc.Container(name, lxcpath).rename, new_name)
rec.call("stop for rename", c.stop)
rec.call("rename to an invalid name", lxc.Container(name, lxcpath).rename, "a/b")
renamed = rec.call("rename", c.rename, new_name)
rec.value("a Container", type(renamed).__name__)
rec.value("looked up in the default lxcpath", getattr(renamed, "defined", None))
rec.value("this object's name", c.name)
rec.value("this object defined", c.defined)
rec.value("the old name defined", lxc.Container(name, lxcpath).defined)
moved = lxc.Container(new_name, lxcpath)
rec.value("the new name defined", moved.defined)
rec.call("its uts.name", moved.get_config_item, "lxc.uts.name")
rec.call("its rootfs", rootfs_of, moved)
rec.value("rootfs moved", os.path.isfile(f"{lxcpath}/{new_name}/rootfs/bin/busybox"))
rec.value("listed", lxc.list_containers(config_path=lxcpath))
rec.call("rename back", moved.rename, name)
rec.call("rename what is gone", lxc.Container(new_name, lxcpath).rename, name)
back = lxc.Container(name, lxcpath)
rec.call("its uts.name now", back.get_config_item, "lxc.uts.name")
rec.call("it starts under its old name", back.start)
rec.call("wait running once more", back.wait, "RUNNING", 10)
rec.call("stop it again", back.stop)
rec.call("destroy", back.destroy)
rec.value("nothing left", lxc.list_containers(config_path=lxcpath))
rec.dump()
