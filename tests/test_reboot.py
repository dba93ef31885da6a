"""Reboot: ``Container.reboot``/``reboot2`` send ``lxc.signal.reboot``, and an init that reboots (from outside
or from inside) is started again by the server that monitors it, with the same plan and a new init; a
halt from inside ends the container for good."""

from __future__ import annotations

import os
import socket
import time

import pytest

from lxcframe import state as st
from lxcframe.errors import ContainerError

pytestmark = pytest.mark.container

VETH = (("lxc.net.0.type", "veth"), ("lxc.net.0.veth.pair", "lxftrb0"), ("lxc.net.0.name", "eth0"),
        ("lxc.net.0.flags", "up"), ("lxc.net.0.ipv4.address", "192.0.2.40/24"))


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _ifindex(name: str) -> int:
    return socket.if_nametoindex(name)  # of this network namespace, which /sys may not show


def test_reboot2_starts_the_container_again_with_a_new_init_and_network(make_container):
    container = make_container("rbnet", config=VETH)
    container.start()
    try:
        before = container.current_state()
        assert before is not None
        host_end = _ifindex("lxftrb0")
        assert container.attach_wait(["/bin/sh", "-c", "echo was-here > /tmp/mark"]) == 0
        assert container.reboot2(60) is True
        after = container.current_state()
        assert after is not None and after.state == st.RUNNING and after.init_pid != before.init_pid
        assert after.monitor_pid == before.monitor_pid  # the same server monitors it
        assert _ifindex("lxftrb0") != host_end  # a fresh veth
        assert container.get_ips(family="inet", timeout=10) == ("192.0.2.40",)
        assert container.attach_wait(["/bin/sh", "-c", "test ! -e /tmp/mark"]) == 0  # a new boot's tmpfs
    finally:
        container.stop(kill=True)
    assert "lxftrb0" not in {name for _, name in socket.if_nameindex()}


def test_a_reboot_from_inside_restarts_and_a_halt_from_inside_stops(make_container):
    container = make_container("rbin")
    container.start()
    try:
        first = container.init_pid
        container.attach_wait(["/bin/sh", "-c", "reboot"])
        _wait_for(lambda: container.state == st.RUNNING and container.init_pid not in (-1, first))
        container.attach_wait(["/bin/sh", "-c", "poweroff"])
        _wait_for(lambda: container.state == st.STOPPED)
        time.sleep(1.0)  # a reboot would have started it again by now
        assert container.state == st.STOPPED
    finally:
        if container.running:
            container.stop(kill=True)


def test_the_reboot_signal_is_lxc_signal_reboot(make_container):
    # busybox init halts on SIGUSR1: a reboot signal that halts shows which signal reboot sends.
    container = make_container("rbsig", config=(("lxc.signal.reboot", "SIGUSR1"),))
    container.start()
    container.reboot()
    _wait_for(lambda: container.state == st.STOPPED)
    time.sleep(1.0)  # a reboot would have started it again by now
    assert container.state == st.STOPPED
    with pytest.raises(ContainerError, match="not running"):
        container.reboot()
    with pytest.raises(ContainerError, match="not running"):
        container.reboot2(1)


def test_reboot2_gives_false_when_the_time_is_out(make_container):
    container = make_container("rbslow")
    container.start()
    try:
        first = container.init_pid
        assert container.reboot2(0.01) is False
        _wait_for(lambda: container.state == st.RUNNING and container.init_pid not in (-1, first))
    finally:
        container.stop(kill=True)


def test_a_monitor_of_its_own_refuses_a_reboot_it_could_not_follow(make_container, per_container_monitor):
    container = make_container("rbown")
    container.start()
    try:
        with pytest.raises(ContainerError, match="its monitor is a process of its own"):
            container.reboot()
        assert container.state == st.RUNNING
    finally:
        container.stop(kill=True)


def test_the_reboot_verb_waits_until_the_container_runs_again(make_container, lxcpath, cli_env):
    from .conftest import run_cli

    container = make_container("rbcli")
    container.start()
    try:
        first = container.init_pid
        env = {**cli_env, "LXCFRAME_RUNDIR": os.environ["LXCFRAME_RUNDIR"],
               "LXCFRAME_HOST_CONFIG": os.environ["LXCFRAME_HOST_CONFIG"]}
        done = run_cli("-P", lxcpath, "reboot", "rbcli", "-t", "60", env=env)
        assert (done.returncode, done.stderr) == (0, "")
        assert container.state == st.RUNNING and container.init_pid != first
        done = run_cli("-P", lxcpath, "reboot", "nosuch", env=env)
        assert done.returncode == 1 and "nosuch: no such container" in done.stderr
    finally:
        container.stop(kill=True)
