"""add_device_node/remove_device_node with a node of the host's /dev/full the test made (argument 4),
and attach_interface/detach_interface with one end of a veth pair the test made (argument 5), in a
container whose device cgroup allows only what busybox needs."""

import os
import socket
import subprocess
import sys

from prepare import busybox
from recorder import Recorder, load_lxc

mode, lxcpath, name, node, link = sys.argv[1:6]
lxc = load_lxc(mode)
rec = Recorder()
c = busybox(lxc, rec, name, lxcpath)
run = lxc.attach_run_command
inside_name = link + "i"  # still lxft…: it comes back to the host under this name

# In this order: cgroup1 applies the lines in turn, and "deny a" empties the list of what is allowed.
rec.call("deny everything", c.append_config_item, "lxc.cgroup.devices.deny", "a")
for rule in ("c 1:3 rwm", "c 1:5 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",
             "c 136:* rwm"):
    rec.call(f"allow {rule}", c.append_config_item, "lxc.cgroup.devices.allow", rule)
rec.call("save_config", c.save_config)


def output(command):
    read, write = os.pipe()
    status = c.attach_wait(run, ["sh", "-c", command], stdout=write, stderr=write)
    os.close(write)
    with os.fdopen(read) as pipe:
        return status, pipe.read()


def allowed():
    return "c 1:7 rwm" in c.get_cgroup_item("devices.list").split("\n")


def host_links():
    return sorted(n for _, n in socket.if_nameindex() if n.startswith(link))


rec.call("add_device_node stopped", c.add_device_node, node)
rec.call("attach_interface stopped", c.attach_interface, link)
rec.call("start", c.start)
rec.call("wait running", c.wait, "RUNNING", 10)

rec.call("not allowed before", allowed)
rec.call("add_device_node", c.add_device_node, node)
rec.call("allowed after", allowed)
rec.call("a character device inside", output, f"test -c {node} && echo char")
rec.call("it is /dev/full: writing fails", output, f"echo x 2>/dev/null > {node}; echo $?")
rec.call("it reads zeros", output, f"head -c 4 {node} | od -An -tx1")
rec.call("remove_device_node", c.remove_device_node, node)
rec.call("gone inside", output, f"test -e {node} || echo gone")
rec.call("not allowed after removal", allowed)
rec.call("add a regular file", c.add_device_node, c.config_file_name)
rec.call("add a missing node", c.add_device_node, node + ".missing")
rec.call("remove a missing node", c.remove_device_node, node + ".missing")
rec.call("add at a path the host does not have", c.add_device_node, node, "/dev/full-given")
rec.call("remove it", c.remove_device_node, node, "/dev/full-given")

rec.call("interfaces before", lambda: sorted(c.get_interfaces()))
rec.call("attach_interface", c.attach_interface, link)
rec.call("interfaces after", lambda: sorted(c.get_interfaces()))
rec.call("gone from the host", host_links)
rec.call("use it inside", output, f"ip addr add 192.0.2.33/24 dev {link} && ip link set {link} up && echo up")
rec.call("its address", c.get_ips, interface=link, family="inet")
rec.call("detach_interface", c.detach_interface, link)
rec.call("back on the host", host_links)
rec.call("interfaces after detach", lambda: sorted(c.get_interfaces()))
rec.call("attach under another name", c.attach_interface, link, inside_name)
rec.call("interfaces with it renamed", lambda: sorted(c.get_interfaces()))
rec.call("detach it", c.detach_interface, inside_name)
rec.call("back under the name it had inside", host_links)
rec.call("named back on the host", subprocess.run, ["ip", "link", "set", inside_name, "name", link], check=True)
rec.call("attach a missing link", c.attach_interface, link + "x")
rec.call("detach a missing link", c.detach_interface, "nosuch0")
rec.call("attach the host's loopback", c.attach_interface, "lo")
rec.call("host links at the end", host_links)

rec.call("stop", c.stop)
rec.call("remove_device_node stopped", c.remove_device_node, node)
rec.call("detach_interface stopped", c.detach_interface, link)
rec.call("destroy", c.destroy)
rec.dump()
