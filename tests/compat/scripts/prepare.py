"""The container every script starts from, made the python3-lxc way: keys set before create() (so
LXC's default.conf, with its veth, is not read), LXC's busybox template."""


def busybox(lxc, rec, name, lxcpath):
    c = lxc.Container(name, lxcpath)
    rec.call("set lxc.net.0.type", c.set_config_item, "lxc.net.0.type", "empty")
    rec.call("set lxc.cgroup.relative", c.set_config_item, "lxc.cgroup.relative", "1")
    # On a host with AppArmor, LXC would confine the container with a profile its tests need not load.
    rec.call("set lxc.apparmor.profile", c.set_config_item, "lxc.apparmor.profile", "unconfined")
    rec.call("create busybox", c.create, "busybox", lxc.LXC_CREATE_QUIET)
    return c
