"""LXC keys of init, rootfs, /dev and scheduling shown by what they do in real containers:
``lxc.init.groups``, ``lxc.rootfs.options``, ``lxc.autodev.tmpfs.size``, ``lxc.sched.core``."""

from __future__ import annotations

import os

import pytest

from lxcframe import syscalls
from lxcframe.errors import ConfigErrors, LxcframeError
from lxcframe.plugins.core import sched_core_unsupported

from .conftest import run_cli
from .test_lifecycle import capture

pytestmark = pytest.mark.container

#: An init that stays until killed (stop -k).
SLEEPING_INIT = ("lxc.init.cmd", "/bin/sleep 1000")


def _status_field(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(field)


def _line_of(path: str, key: str) -> int:
    with open(path) as handle:
        return next(n for n, line in enumerate(handle, 1) if line.startswith(key))


# --- lxc.init.groups -----------------------------------------------------------------------------------------


def test_init_groups_are_inits_supplementary_groups(make_container):
    container = make_container("groups", config=(SLEEPING_INIT, ("lxc.init.groups", "10,20"),
                                                 ("lxc.init.groups", "30")))
    init = container.start()
    try:
        assert _status_field(init, "Groups").split() == ["10", "20", "30"]
        # Every process init starts has them; an attached one does not (as lxc-attach).
        code, text = capture(container, "/bin/sh", "-c", "grep ^Groups: /proc/1/status")
        assert code == 0 and text.split()[1:] == ["10", "20", "30"]
    finally:
        container.stop(kill=True)
    # With an other gid for init the groups hold as well.
    container.set_config_item("lxc.init.gid", "5")
    init = container.start()
    try:
        assert _status_field(init, "Groups").split() == ["10", "20", "30"]
        assert _status_field(init, "Gid").split()[0] == "5"
    finally:
        container.stop(kill=True)


def test_without_init_groups_init_has_none(make_container):
    container = make_container("nogroups", config=(SLEEPING_INIT,))
    init = container.start()
    try:
        assert _status_field(init, "Groups") == ""
    finally:
        container.stop(kill=True)


def test_a_bad_group_list_names_file_line_and_key(make_container):
    container = make_container("badgroups")
    with open(container.config_file_name, "a") as handle:
        handle.write("lxc.init.groups = 10,wheel\n")
    with pytest.raises(ConfigErrors) as info:
        container.start()
    line = _line_of(container.config_file_name, "lxc.init.groups")
    assert str(info.value.errors[0]).startswith(f"{container.config_file_name}:{line}: lxc.init.groups")
    assert "'wheel'" in str(info.value.errors[0])


# --- lxc.rootfs.options --------------------------------------------------------------------------------------


def test_rootfs_options_ro_makes_the_root_read_only_and_leaves_the_mounts_on_it(make_container):
    container = make_container("rootro", config=(SLEEPING_INIT, ("lxc.rootfs.options", "ro,nosuid")))
    init = container.start()
    try:
        # The output goes to /dev/shm (the root takes no file), read from the host through init's root.
        code = container.attach_wait(["/bin/sh", "-c", "touch /written 2> /dev/shm/out"])
        with open(f"/proc/{init}/root/dev/shm/out") as handle:
            assert code != 0 and "Read-only file system" in handle.read()
        # /dev (the autodev tmpfs) and /proc stay what they are.
        assert container.attach_wait(["/bin/sh", "-c", "touch /dev/shm/ok && cat /proc/1/comm"]) == 0
        with open(f"/proc/{init}/mountinfo") as handle:
            root = next(line.split() for line in handle if line.split()[4] == "/")
        assert "ro" in root[5].split(",") and "nosuid" in root[5].split(",")
    finally:
        container.stop(kill=True)
    assert not os.path.exists(os.path.join(container.load_config().get("lxc.rootfs.path"), "written"))


def test_rootfs_options_that_are_no_flags_are_refused_at_their_line(make_container, lxcpath):
    container = make_container("rootbad")
    for value, said in (("ro,idmap=container", "idmap=container: not supported: lxc.idmap"),
                        ("ro,size=10m", "size=10m: not a flag of the rootfs mount")):
        container.set_config_item("lxc.rootfs.options", "ro")  # valid, to find its line
        with open(container.config_file_name) as handle:
            text = handle.read().replace("lxc.rootfs.options = ro", f"lxc.rootfs.options = {value}")
        with open(container.config_file_name, "w") as handle:
            handle.write(text)
        result = run_cli("config", "validate", container.config_file_name)
        line = _line_of(container.config_file_name, "lxc.rootfs.options")
        assert result.returncode == 1
        assert f"{container.config_file_name}:{line}: lxc.rootfs.options" in result.stderr and said in result.stderr
        with open(container.config_file_name, "w") as handle:
            handle.write(text.replace(f"lxc.rootfs.options = {value}\n", ""))


# --- lxc.autodev.tmpfs.size ----------------------------------------------------------------------------------


def _dev_options(init: int) -> list[str]:
    with open(f"/proc/{init}/mountinfo") as handle:
        fields = next(line.split() for line in handle if line.split()[4] == "/dev")
    return fields[fields.index("-") + 3].split(",")


@pytest.mark.parametrize(("value", "size"), [(None, "size=492k"), ("0", "size=492k"), ("2097152", "size=2048k")])
def test_autodev_tmpfs_size_is_the_size_of_dev(make_container, value, size):
    config = (SLEEPING_INIT,) + ((("lxc.autodev.tmpfs.size", value),) if value is not None else ())
    container = make_container("devsize", config=config)
    init = container.start()
    try:
        # The kernel shows the size in KiB, rounded up to whole pages: 500000 bytes (LXC's default) is 492k.
        assert size in _dev_options(init)
    finally:
        container.stop(kill=True)


# --- lxc.sched.core ------------------------------------------------------------------------------------------


def test_sched_core_gives_the_container_a_cookie_or_is_a_clear_error(make_container, lxcpath):
    container = make_container("schedcore", config=(SLEEPING_INIT, ("lxc.sched.core", "1")))
    why = sched_core_unsupported()
    if why is None:
        init = container.start()
        try:
            assert _cookie(init) not in (0, _cookie(os.getpid()))
        finally:
            container.stop(kill=True)
        return
    # This kernel cannot: the start and config validate refuse the key at its line, saying why.
    line = _line_of(container.config_file_name, "lxc.sched.core")
    expected = f"{container.config_file_name}:{line}: lxc.sched.core = 1: {why}"
    with pytest.raises(LxcframeError) as info:
        container.start()
    assert expected in str(info.value)
    assert container.state == "STOPPED"
    result = run_cli("config", "validate", container.config_file_name)
    assert result.returncode == 1 and f"lxcframe: error: {expected}" in result.stderr.splitlines()
    container.set_config_item("lxc.sched.core", "0")
    container.start()
    container.stop(kill=True)


def _cookie(pid: int) -> int:
    import ctypes

    cookie = ctypes.c_ulong()
    syscalls.prctl(62, 0, pid, 1, ctypes.addressof(cookie))
    return cookie.value


# --- lxc.log.syslog ------------------------------------------------------------------------------------------


def test_log_syslog_sends_the_containers_lines_with_its_facility(make_container, tmp_path, monkeypatch):
    import socket

    from lxcframe import log

    # The host has its syslog socket at /dev/log; here one of the test's own takes the datagrams, and
    # the monitor this process forks (server=False) sends to it.
    path = str(tmp_path / "log")
    monkeypatch.setattr(log, "SYSLOG_SOCKET", path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        container = make_container("syslogged", server=False, config=(
            SLEEPING_INIT, ("lxc.log.syslog", "local3"), ("lxc.log.level", "info")))
        container.start()
        container.stop(kill=True)
        server.settimeout(10)
        received = []
        while not any("container stopped" in text for text in received):
            received.append(server.recv(65536).decode())
    # local3 is facility 19; info is severity 6: <19*8+6>.
    stopped = next(text for text in received if "container stopped" in text)
    assert stopped.startswith("<158>lxcframe[") and "syslogged" in stopped
    assert all(text.startswith("<15") for text in received)  # facility 19: priorities 152…159


def test_log_syslog_names_its_facilities(make_container):
    container = make_container("syslogbad")
    with open(container.config_file_name, "a") as handle:
        handle.write("lxc.log.syslog = kern\n")
    with pytest.raises(ConfigErrors) as info:
        container.start()
    line = _line_of(container.config_file_name, "lxc.log.syslog")
    assert str(info.value.errors[0]).startswith(f"{container.config_file_name}:{line}: lxc.log.syslog")
    assert "local7" in str(info.value.errors[0])
