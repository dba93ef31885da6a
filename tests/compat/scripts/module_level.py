"""Module-level names: constants, arch_to_personality, global config, list_containers."""

import sys

from recorder import Recorder, load_lxc

mode, lxcpath, name = sys.argv[1:4]
lxc = load_lxc(mode)
rec = Recorder()

for constant in ("CLONE_NEWNS", "CLONE_NEWUTS", "CLONE_NEWIPC", "CLONE_NEWUSER", "CLONE_NEWPID", "CLONE_NEWNET",
                 "LXC_ATTACH_KEEP_ENV", "LXC_ATTACH_CLEAR_ENV", "LXC_ATTACH_MOVE_TO_CGROUP",
                 "LXC_ATTACH_DROP_CAPABILITIES", "LXC_ATTACH_SET_PERSONALITY", "LXC_ATTACH_LSM_EXEC",
                 "LXC_ATTACH_REMOUNT_PROC_SYS", "LXC_ATTACH_LSM_NOW", "LXC_ATTACH_DEFAULT", "LXC_CLONE_KEEPNAME",
                 "LXC_CLONE_KEEPMACADDR", "LXC_CLONE_SNAPSHOT", "LXC_CLONE_KEEPBDEVTYPE", "LXC_CLONE_MAYBE_SNAPSHOT",
                 "LXC_CREATE_QUIET"):
    rec.value(constant, getattr(lxc, constant))
for hidden in ("CLONE_NEWCGROUP", "LXC_ATTACH_NO_NEW_PRIVS", "LXC_ATTACH_TERMINAL"):
    rec.value(f"{hidden} exported", hasattr(lxc, hidden))
for arch in ("x86_64", "amd64", "linux64", "i386", "i686", "x86", "linux32", "athlon", b"i586", "arm64", "X86_64"):
    rec.call(f"arch_to_personality({arch!r})", lxc.arch_to_personality, arch)
rec.call("arch_to_personality(5)", lxc.arch_to_personality, 5)
rec.value("version is str", type(lxc.version).__name__)
rec.value("default_config_path is str", type(lxc.default_config_path).__name__)
rec.call("get_global_config_item(lxc.nosuch)", lxc.get_global_config_item, "lxc.nosuch")
rec.call("get_global_config_item(lxc.cgroup.pattern)", lxc.get_global_config_item, "lxc.cgroup.pattern")
rec.value("get_global_config_item(lxc.lxcpath) is the default path",
          lxc.get_global_config_item("lxc.lxcpath") == lxc.default_config_path)
rec.call("list_containers(missing path)", lxc.list_containers, config_path=lxcpath + "/missing")
rec.call("list_containers(empty path)", lxc.list_containers, config_path=lxcpath)
rec.call("list_containers(as_object, empty)", lxc.list_containers, as_object=True, config_path=lxcpath)
for function in ("attach_run_command", "attach_run_shell", "list_containers", "arch_to_personality",
                 "get_global_config_item"):
    rec.value(f"{function} callable", callable(getattr(lxc, function)))
for cls in ("Container", "ContainerNetwork", "ContainerNetworkList"):
    rec.value(f"{cls} is a class", isinstance(getattr(lxc, cls), type))
rec.dump()
