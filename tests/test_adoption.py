"""No Python monitor per container: the server is the parent and the monitor of the containers it starts.

A daemon start is served by a worker forked from the server; init is forked as the server's own child, the
worker hands the running container over and exits. When init exits, the server forks a worker that ends
the container (stop and post-stop hooks, cleanup). A server that dies leaves its containers to the next
one, which adopts the living again and ends those that died meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal

import pytest

from lxcframe import spawning
from lxcframe import state as st
from lxcframe.adopted import registry_dir

from .server_fixtures import alive, children, parent_of, server_pid, server_up, wait_until
from .test_cgroups import leftovers
from .test_hook_failures import hook_script, journal

pytestmark = pytest.mark.container


def _kill_server() -> None:
    """SIGKILL the run directory's server and wait until it is gone."""
    server = server_pid()
    pidfd = os.pidfd_open(server)
    try:
        os.kill(server, signal.SIGKILL)
        assert select.select([pidfd], [], [], 10)[0], "the server did not die"
    finally:
        os.close(pidfd)


def _registry() -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return sorted(os.listdir(registry_dir()))
    return []


def test_the_server_is_inits_parent_and_monitor_and_no_worker_stays(make_container, rundir, tmp_path):
    container = make_container("adopt1", config=(("lxc.console.buffer.size", "4096"),))
    init = container.start()
    server = server_pid()
    assert parent_of(init) == server
    recorded = container.current_state()
    assert (recorded.monitor_pid, recorded.adopted, recorded.init_pid) == (server, True, init)
    # The start worker left once it handed the container over: the server's only living child is init.
    wait_until(lambda: {pid for pid in children(server) if alive(pid)} == {init},
                what="the start worker to leave")
    assert len(_registry()) == 1  # what a server started after this one's death would adopt again
    # The console moved to the server with the container: its ring buffer fills from init's output.
    assert container.attach_wait(["/bin/sh", "-c", "echo adopted-console-line > /dev/console"]) == 0
    wait_until(lambda: "adopted-console-line" in container.console_log(), what="the console line")
    # Each attach is a process of the caller's, not a child of the server.
    assert container.attach_wait(["/bin/sh", "-c", "kill -0 1"]) == 0
    container.stop()
    assert container.state == st.STOPPED
    assert st.read_state(container.lxcpath, container.name) is None
    assert leftovers(container.name) == []
    wait_until(lambda: _registry() == [], what="the registry entry to go")


def test_init_that_exits_is_ended_by_a_worker_of_the_server(make_container, tmp_path):
    stop, post_stop = hook_script(tmp_path, "stop.sh", 0), hook_script(tmp_path, "post-stop.sh", 0)
    log = tmp_path / "container.log"
    container = make_container("adopt2", config=(("lxc.hook.stop", stop), ("lxc.hook.post-stop", post_stop),
                                                 ("lxc.log.file", str(log)), ("lxc.log.level", "info")))
    container.start(["/bin/sleep", "0.3"])
    assert container.wait("STOPPED", 15)
    wait_until(lambda: st.read_state(container.lxcpath, container.name) is None, what="the state to go")
    name = container.name
    entries = journal(tmp_path)
    assert [e.split()[:5] for e in entries] == [["stop.sh", "stop", name, "lxc", "stop"],
                                                ["post-stop.sh", "post-stop", name, "lxc", "post-stop"]]
    # The stop hook got the container's namespaces, kept by the server after init exited.
    assert " net:/proc/" in entries[0] and " mnt:/proc/" in entries[0], entries[0]
    assert leftovers(name) == [], log.read_text()


def test_a_killed_server_takes_its_containers_with_it_and_the_next_one_ends_them(make_container, rundir, tmp_path):
    """lxc.monitor.signal.pdeath (SIGKILL by default) is about init's parent: the server."""
    post_stop = hook_script(tmp_path, "post-stop.sh", 0)
    container = make_container("adopt3", config=(("lxc.hook.post-stop", post_stop),))
    init = container.start()
    init_fd = os.pidfd_open(init)
    try:
        _kill_server()
        assert select.select([init_fd], [], [], 10)[0], "init outlived the server that was its parent"
    finally:
        os.close(init_fd)
    assert journal(tmp_path) == []  # nobody ended it yet: its cgroups and state are still there
    assert leftovers(container.name) != []
    spawning.start_server(wait=True)
    wait_until(server_up, what="the next server to listen")
    wait_until(lambda: st.read_state(container.lxcpath, container.name) is None, what="the next server to end it")
    wait_until(lambda: _registry() == [], what="the registry entry to go")
    assert [e.split()[:2] for e in journal(tmp_path)] == [["post-stop.sh", "post-stop"]]
    assert leftovers(container.name) == []
    assert container.state == st.STOPPED


def test_with_pdeath_zero_a_container_outlives_the_server_and_the_next_one_adopts_it(make_container, rundir,
                                                                                     tmp_path):
    post_stop = hook_script(tmp_path, "post-stop.sh", 0)
    container = make_container("adopt4", config=(("lxc.monitor.signal.pdeath", "0"),
                                                 ("lxc.hook.post-stop", post_stop)))
    init = container.start()
    init_start = st.process_start_time(init)
    _kill_server()
    assert st.process_start_time(init) == init_start
    assert container.attach_wait(["/bin/sh", "-c", "kill -0 1"]) == 0
    spawning.start_server(wait=True)
    wait_until(server_up, what="the next server to listen")
    server = server_pid()
    wait_until(lambda: container.current_state().monitor_pid == server, what="the new server to adopt it")
    recorded = container.current_state()
    assert (recorded.state, recorded.init_pid, recorded.adopted) == (st.RUNNING, init, True)
    container.stop(kill=True)
    assert container.state == st.STOPPED
    assert st.read_state(container.lxcpath, container.name) is None
    assert [e.split()[:2] for e in journal(tmp_path)] == [["post-stop.sh", "post-stop"]]
    assert leftovers(container.name) == []
    wait_until(lambda: _registry() == [], what="the registry entry to go")


def test_a_failed_start_leaves_no_child_of_the_server(make_container, rundir, tmp_path):
    refuse = hook_script(tmp_path, "start-host.sh", 7)
    keeper = make_container("adopt5k")
    keeper.start()  # keeps the server up between the two starts
    server = server_pid()
    container = make_container("adopt5", config=(("lxc.hook.start-host", refuse),))
    with pytest.raises(Exception, match="start-host"):
        container.start()
    assert st.read_state(container.lxcpath, container.name) is None
    assert leftovers(container.name) == []
    # The failed start's init was the server's child: reaped, not left a zombie.
    wait_until(lambda: children(server) == {keeper.init_pid}, what="the server's children")
    keeper.stop(kill=True)


def test_without_adoption_each_container_has_its_own_monitor(make_container, rundir, monkeypatch):
    monkeypatch.setenv("LXCFRAME_ADOPT", "0")
    container = make_container("adopt6")
    init = container.start()
    recorded = container.current_state()
    assert not recorded.adopted
    assert parent_of(init) == recorded.monitor_pid
    assert parent_of(recorded.monitor_pid) == server_pid()
    container.stop(kill=True)
    assert leftovers(container.name) == []
