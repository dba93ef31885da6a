"""Moving a host interface into a running container and back (``Container.attach_interface`` and
``detach_interface``, LXC's and python3-lxc's calls of those names), through pyroute2."""

from __future__ import annotations

import os

from lxcframe.errors import ContainerError
from lxcframe.plugins.netns.iproute import Rtnl


def _namespace_of(init_pid: int) -> int:
    # The caller proved init (Container._running_state); opened through its pidfd would be no safer here,
    # since the move below names the namespace by this descriptor, not by the pid.
    return os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def move_in(init_pid: int, name: str, new_name: str | None) -> None:
    """Move host interface ``name`` into the container's network namespace as ``new_name`` (or ``name``)."""
    inside = new_name or name
    target = _namespace_of(init_pid)
    try:
        with Rtnl() as host:
            link = host.link(name)
            if link.ifindex == 1:
                raise ContainerError(f"attach_interface {name}: the host's loopback cannot be moved")
            host.set_link(link.ifindex, name=inside, ns_fd=target, what=f"move {name} into the container as {inside}")
    finally:
        os.close(target)


def move_out(init_pid: int, name: str, new_name: str | None) -> None:
    """Move interface ``name`` of the container back to the host's namespace as ``new_name`` (or ``name``)."""
    outside = new_name or name
    source = _namespace_of(init_pid)
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with Rtnl(ns_fd=source) as inner:
            link = inner.link(name)
            if link.ifindex == 1:
                raise ContainerError(f"detach_interface {name}: the container's loopback cannot be moved")
            inner.set_link(link.ifindex, name=outside, ns_fd=host_ns,
                           what=f"move {name} out of the container as {outside}")
    finally:
        os.close(host_ns)
        os.close(source)
