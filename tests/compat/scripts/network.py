"""get_ips and get_interfaces: lo skipped unless named, IPv6 link-local only on asking, polling with
timeout and LXC_GETIP_TIMEOUT. The addresses are made inside the container's own network namespace
(a veth pair that never leaves it; busybox names the peer veth0), from the documentation ranges."""

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

rec.call("start", c.start)
rec.call("wait running", c.wait, "RUNNING", 10)
rec.call("no address yet", c.get_ips)
rec.call("lo named", c.get_ips, interface="lo")
rec.call("make a veth pair inside", c.attach_wait, run, [
    "sh", "-c", "ip link add name v0 type veth && ip addr add 192.0.2.5/24 dev v0"
    " && ip -6 addr add 2001:db8::5/64 dev v0 && ip link set veth0 up && ip link set v0 up && sleep 3"])
rec.call("interfaces", lambda: sorted(c.get_interfaces()))
rec.call("addresses", c.get_ips)
rec.call("inet", c.get_ips, family="inet")
rec.call("inet6", c.get_ips, family="inet6")
rec.call("of v0", c.get_ips, interface="v0")
rec.call("of veth0 (link-local only)", c.get_ips, interface="veth0")
rec.call("scope 253 (no interface has that index)", c.get_ips, family="inet6", scope=253)


def link_local_of(interface):
    """get_ips with scope = the interface's index, as liblxc compares it with the scope id."""
    read, write = os.pipe()
    c.attach_wait(run, ["cat", f"/sys/class/net/{interface}/ifindex"], stdout=write)
    os.close(write)
    with os.fdopen(read) as pipe:
        index = int(pipe.read())
    return [ip.split(":")[0] for ip in c.get_ips(interface=interface, scope=index)]


rec.call("scope = v0's index", link_local_of, "v0")
rec.call("scope = veth0's index", link_local_of, "veth0")
rec.call("lo named", c.get_ips, interface="lo")
rec.call("unknown interface", c.get_ips, interface="nosuch")

pid = c.attach(run, ["sh", "-c", "sleep 2; ip addr add 198.51.100.7/24 dev veth0"])
started = time.monotonic()
rec.call("polled until there", c.get_ips, interface="veth0", family="inet", timeout=10)
rec.value("within the timeout, after the address came", 1.5 < time.monotonic() - started < 6)
rec.value("the command's status", os.waitpid(pid, 0)[1])

os.environ["LXC_GETIP_TIMEOUT"] = "0"
started = time.monotonic()
rec.call("LXC_GETIP_TIMEOUT overrides", c.get_ips, interface="nosuch", timeout=30)
rec.value("at once", time.monotonic() - started < 1)

rec.call("stop", c.stop)
rec.call("destroy", c.destroy)
rec.dump()
