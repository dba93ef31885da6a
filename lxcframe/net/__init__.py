"""Network plumbing shared by the ``netns`` plugin and the library API, on raw rtnetlink sockets.

* :mod:`lxcframe.net.netlink` – message packing, one socket class, errors with the kernel's own reason.
* :mod:`lxcframe.net.rtnl` – the requests lxcframe sends: links, addresses, routes, netns ids.
* :mod:`lxcframe.net.inspect` – a running container's interfaces and addresses, read from the host.

Nothing here imports pyroute2: packing the few messages needed by hand costs a few microseconds, where
importing pyroute2 costs ~130 ms on every command that touches a network.
"""
