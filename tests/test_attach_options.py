"""``Container.attach`` and ``attach_wait`` with what integrators pass (python3-lxc's options): a pid the
caller reaps, Python callables with fork semantics, stdio redirection, the environment policy and
``lxc.environment``, the working directory, a subset of namespaces, other ids, and from a caller with
threads."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest

from lxcframe.errors import ContainerError

from .conftest import another_thread

pytestmark = pytest.mark.container

CLONE_NEWUTS = 0x04000000
ROOT_MAP = (("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536"))


@pytest.fixture
def running(make_container):
    container = make_container("atopt", config=(("lxc.environment", "FROM_CONFIG=yes"),))
    container.start()
    yield container
    container.stop(kill=True)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _output(container, argv, **options) -> tuple[int, str]:
    read_end, write_end = os.pipe()
    try:
        code = container.attach_wait(argv, stdout=write_end, **options)
    finally:
        os.close(write_end)
    return code, _read_all(read_end).decode()


def test_attach_returns_a_pid_the_caller_reaps_with_the_raw_status(running):
    pid = running.attach(["/bin/sh", "-c", "exit 7"])
    assert os.waitpid(pid, 0) == (pid, 7 << 8)
    # The command runs under the sealed init (tini), which reports a death by signal N as exit 128 + N.
    pid = running.attach(["/bin/sh", "-c", "kill -TERM $$"])
    assert os.waitpid(pid, 0) == (pid, (128 + signal.SIGTERM) << 8)
    assert running.attach_wait(["/bin/sh", "-c", "kill -TERM $$"]) == 128 + signal.SIGTERM


def test_a_callable_runs_inside_with_the_callers_descriptors_and_its_return_is_the_status(running):
    read_end, write_end = os.pipe()  # the callable writes to the caller's own pipe: fork semantics

    def inside() -> int:
        with open("/etc/hostname") as handle:
            hostname = handle.read().strip()
        os.write(write_end, json.dumps({"pid": os.getpid(), "uname": os.uname().nodename, "cwd": os.getcwd(),
                                        "hostname": hostname, "dumpable": _dumpable()}).encode())
        return 3

    try:
        assert running.attach_wait(inside, cwd="/etc") == 3
    finally:
        os.close(write_end)
    facts = json.loads(_read_all(read_end))
    # Its own pid namespace (init is 1), the container's uts and mount namespaces, the cwd asked for.
    assert facts["uname"] == facts["hostname"] == "atopt" and facts["cwd"] == "/etc"
    assert 1 < facts["pid"] < 1000 and facts["pid"] != os.getpid()
    assert facts["dumpable"] == 0


def _dumpable() -> int:
    import ctypes

    return ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE


def test_a_callables_exception_exit_and_none_give_python_s_statuses(running):
    assert running.attach_wait(lambda: None) == 0
    assert running.attach_wait(lambda: 1 / 0) == 1
    assert running.attach_wait(lambda: os.sys.exit(5)) == 5  # type: ignore[attr-defined]
    pid = running.attach(lambda: 9)
    assert os.waitpid(pid, 0) == (pid, 9 << 8)


def test_stdio_is_redirected_and_only_passed_descriptors_reach_the_command(running):
    stdin_r, stdin_w = os.pipe()
    os.write(stdin_w, b"from the caller\n")
    os.close(stdin_w)
    stray_r, stray_w = os.pipe()  # open in the caller, not passed
    try:
        code, out = _output(running, ["/bin/sh", "-c", f"cat; ls /proc/self/fd/{stray_w} 2>&1 || echo gone"],
                            stdin=stdin_r)
    finally:
        for fd in (stdin_r, stray_r, stray_w):
            os.close(fd)
    assert code == 0
    assert out.splitlines()[0] == "from the caller" and out.splitlines()[-1] == "gone"


def test_the_environment_policy_lxc_environment_and_extra_variables(running, monkeypatch):
    monkeypatch.setenv("KEPT_FROM_HOST", "1")
    monkeypatch.setenv("SECRET_OF_HOST", "1")
    code, out = _output(running, ["/bin/sh", "-c", "env"], clear_env=True, keep_env=["KEPT_FROM_HOST"],
                        env=["EXTRA=2", "FROM_CONFIG=overridden"])
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert code == 0
    assert env["KEPT_FROM_HOST"] == "1" and "SECRET_OF_HOST" not in env
    assert env["container"] == "lxc" and env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["EXTRA"] == "2" and env["FROM_CONFIG"] == "overridden"  # asked for last
    code, out = _output(running, ["/bin/sh", "-c", "echo $FROM_CONFIG $SECRET_OF_HOST"])
    assert (code, out) == (0, "yes 1\n")  # kept: the caller's environment and lxc.environment


def test_a_subset_of_namespaces_and_other_ids(running):
    code, out = _output(running, ["/bin/sh", "-c", "hostname; readlink /proc/self/ns/mnt"], namespaces=CLONE_NEWUTS)
    assert code == 0
    assert out.splitlines() == ["atopt", os.readlink("/proc/self/ns/mnt")]  # the container's uts, our mounts
    assert _output(running, ["/bin/sh", "-c", "id -u; id -g; pwd"], uid=1000, gid=1001, cwd="/tmp") == \
        (0, "1000\n1001\n/tmp\n")


def test_bad_options_are_refused_naming_the_option(running):
    for options, named in (({"namespaces": 1}, "namespaces"), ({"cwd": "relative"}, "cwd"),
                           ({"stdout": "nope"}, "stdout"), ({"env": ["NOEQUALS"]}, "env"),
                           ({"uid": -5}, "uid"), ({"pass_fds": [1]}, "pass_fds"), ({"personality": -7}, "personality"),
                           ({"keep_env": ["A\0B"]}, "keep_env")):
        with pytest.raises(ContainerError, match=f"attach {named}: "):
            running.attach(["/bin/true"], **options)
    with pytest.raises(ContainerError, match="neither a command"):
        running.attach("/bin/true")
    closed_r, closed_w = os.pipe()
    os.close(closed_r)
    os.close(closed_w)
    with pytest.raises(ContainerError, match=f"descriptor {closed_w} is not open"):
        running.attach(["/bin/true"], stdout=closed_w)
    with pytest.raises(ContainerError, match="cannot execute /no/such/program"):
        running.attach(["/no/such/program"])


def test_from_a_caller_with_threads_a_command_s_pid_is_still_the_callers_child(running):
    with another_thread():
        assert threading.active_count() > 1
        pid = running.attach(["/bin/sh", "-c", "exit 4"])
        assert os.waitpid(pid, 0) == (pid, 4 << 8)
        code, out = _output(running, ["/bin/sh", "-c", "pwd"], cwd="/etc")  # not plain: no server by name
        assert (code, out) == (0, "/etc\n")
        with pytest.raises(ContainerError, match="forks this interpreter, which has other threads"):
            running.attach(lambda: 0)


@pytest.mark.parametrize(("config", "closed"), [
    (ROOT_MAP, "environ mem fd"),
    # Root of a privileged container has the callable's uid: the kernel lets it read what ptrace's read
    # mode guards (environ, the descriptor list); not being dumpable still keeps its memory out of reach.
    ((("lxc.cap.drop", "sys_ptrace"),), "mem"),
], ids=["unprivileged", "privileged-without-sys_ptrace"])
def test_a_container_root_cannot_read_an_attached_callables_memory_or_descriptors(make_container, config, closed):
    """The callable is a fork of the caller, with the caller's memory and descriptors, inside the container's
    pid namespace: its processes see it. Not dumpable, it keeps them out of /proc/PID/{environ,mem,fd} (an
    unprivileged container's root), and its memory out of reach of a privileged container's root too."""
    container = make_container("atsec", config=config)
    container.start()
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = None
    try:
        def waiting() -> int:
            os.write(ready_w, str(os.getpid()).encode())
            os.read(hold_r, 1)  # until the attacker is done
            return 0

        pid = container.attach(waiting)
        inside_pid = int(os.read(ready_r, 32))
        # Opening mem is what the kernel checks (reading it then needs a mapped address).
        probe = (f"head -c1 /proc/{inside_pid}/environ >/dev/null 2>&1 && echo read environ; "
                 f"(exec 3</proc/{inside_pid}/mem) 2>/dev/null && echo opened mem; "
                 f"ls /proc/{inside_pid}/fd >/dev/null 2>&1 && echo read fd; echo done")
        expected = "".join(f"{what}\n" for what in ("read environ", "opened mem", "read fd")
                           if what.split()[1] not in closed.split()) + "done\n"
        assert _output(container, ["/bin/sh", "-c", probe]) == (0, expected)
    finally:
        os.write(hold_w, b"x")
        if pid is not None:
            assert os.waitpid(pid, 0) == (pid, 0)  # reaped: a zombie of ours would keep the container's cgroups
        for fd in (ready_r, ready_w, hold_r, hold_w):
            os.close(fd)
        container.stop(kill=True)


def test_what_an_attached_callable_executes_ignores_no_signal(running):
    """Not Python's ignored SIGPIPE and SIGXFSZ: the callable's process has a fresh process's dispositions."""
    probe = ["/bin/grep", "SigIgn", "/proc/self/status"]
    read_end, write_end = os.pipe()
    try:
        assert running.attach_wait(lambda: os.execv(probe[0], probe), stdout=write_end) == 0
    finally:
        os.close(write_end)
    assert _read_all(read_end).decode().split() == ["SigIgn:", "0000000000000000"]
