"""The config calls: reads (str, list, ""), KeyError cases, set_config_item's read-back and roll-back,
edits held in memory until save_config, load_config, clear_config and the network view."""

import sys

from prepare import busybox
from recorder import Recorder, load_lxc

mode, lxcpath, name = sys.argv[1:4]
lxc = load_lxc(mode)
rec = Recorder()

fresh = lxc.Container("fresh", lxcpath)
rec.call("fresh: get with no config", fresh.get_config_item, "lxc.uts.name")
rec.call("fresh: clear with no config", fresh.clear_config_item, "lxc.uts.name")
rec.call("fresh: save with no config", fresh.save_config)
rec.call("fresh: set", fresh.set_config_item, "lxc.uts.name", "fresh")
rec.call("fresh: get after set", fresh.get_config_item, "lxc.uts.name")
rec.value("fresh: defined by save_config", fresh.defined)
rec.call("fresh: clear_config", fresh.clear_config)
rec.call("fresh: get after clear_config", fresh.get_config_item, "lxc.uts.name")

c = busybox(lxc, rec, name, lxcpath)


def in_file(text):
    with open(c.config_file_name) as handle:
        return text in handle.read()


rec.call("uts.name", c.get_config_item, "lxc.uts.name")
rec.call("unknown key", c.get_config_item, "lxc.nosuch")
rec.call("legacy lxc.rootfs", c.get_config_item, "lxc.rootfs")
rec.call("legacy lxc.utsname", c.get_config_item, "lxc.utsname")
rec.call("unset multi-valued key", c.get_config_item, "lxc.environment")
rec.call("unset single key", c.get_config_item, "lxc.init.cwd")
rec.call("set a list", c.set_config_item, "lxc.environment", ["A=1", "B=2"])
rec.call("read the list", c.get_config_item, "lxc.environment")
rec.call("append", c.append_config_item, "lxc.environment", "C=3")
rec.call("read after append", c.get_config_item, "lxc.environment")
rec.call("set a str on a list key", c.set_config_item, "lxc.environment", "D=4")
rec.call("read it as a list", c.get_config_item, "lxc.environment")
rec.call("clear_config_item", c.clear_config_item, "lxc.environment")
rec.call("read after clear", c.get_config_item, "lxc.environment")
rec.call("set uts.name", c.set_config_item, "lxc.uts.name", "other")
rec.call("read uts.name", c.get_config_item, "lxc.uts.name")
rec.value("not in the file before save_config", in_file("other"))
rec.call("set a valid uid", c.set_config_item, "lxc.init.uid", "5")
rec.call("set an invalid one", c.set_config_item, "lxc.init.uid", "many")
rec.call("rolled back", c.get_config_item, "lxc.init.uid")
rec.call("set an unknown key", c.set_config_item, "lxc.nosuch", "1")
rec.call("append an unknown key", c.append_config_item, "lxc.nosuch", "1")
rec.call("clear an unknown key", c.clear_config_item, "lxc.nosuch")
rec.call("log.level by name", c.set_config_item, "lxc.log.level", "DEBUG")
rec.call("save_config", c.save_config)
rec.value("in the file after save_config", in_file("other"))
copy = c.config_file_name + ".copy"
rec.call("save_config to a path", c.save_config, copy)
other = lxc.Container("other", lxcpath)
rec.call("load_config from a path", other.load_config, copy)
rec.call("what it loaded", other.get_config_item, "lxc.uts.name")
rec.value("loading does not define it", other.defined)
rec.call("load_config of a missing file", other.load_config, copy + ".missing")
rec.call("get_config_path", lambda: c.get_config_path() == lxcpath)
rec.call("running config of a stopped container", c.get_running_config_item, "lxc.uts.name")
rec.call("lxc.net", c.get_config_item, "lxc.net")
rec.value("networks", len(c.network))
rec.call("network 0 type", lambda: c.network[0].type)
rec.call("network type of an unknown attribute", lambda: c.network[0].nosuch)
rec.call("add a network", c.network.add, "empty")
rec.value("networks after add", len(c.network))
rec.call("remove it", c.network.remove, 1)
rec.value("networks after remove", len(c.network))
rec.call("network past the end", lambda: c.network[2])
rec.call("get_keys of an empty network", c.get_keys, "lxc.net.0")
rec.call("get_keys of a network that is not there", c.get_keys, "lxc.net.5")
rec.call("get_keys is a list", lambda: type(c.get_keys()).__name__)
again = lxc.Container(name, lxcpath)
rec.call("another object: clear_config", again.clear_config)
rec.call("get after clear_config", again.get_config_item, "lxc.uts.name")
rec.value("still defined", again.defined)
rec.call("set after clear_config", again.set_config_item, "lxc.uts.name", "again")
rec.call("get after that", again.get_config_item, "lxc.uts.name")
rec.call("destroy", c.destroy)
rec.dump()
