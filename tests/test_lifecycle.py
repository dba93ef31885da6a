"""Real containers: create, start, attach, execute, stop, destroy, and a clean host afterwards."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import ConfigError, ConfigErrors, ContainerError
from lxcframe.plugins.netns import rawlink as rtnl
from lxcframe.plugins.netns.rawlink import RtnlSocket

from .conftest import run_cli

pytestmark = pytest.mark.container


def capture(container: Container, *cmd: str, execute: bool = False, where: str = "/") -> tuple[int, str]:
    """Run ``cmd`` (attach, or execute) with its output captured through a file in the rootfs."""
    rootfs = container.load_config().get("lxc.rootfs.path")
    runner = container.execute if execute else container.attach_wait
    inside = os.path.join(where, ".capture")
    code = runner(["/bin/sh", "-c", f'exec "$0" "$@" > {inside} 2>&1', *cmd])
    path = os.path.join(rootfs, inside.lstrip("/"))
    with open(path) as handle:
        text = handle.read()
    os.unlink(path)
    return code, text


def test_execute_exit_status_pid_hostname_mounts_caps(make_container):
    container = make_container("app1")
    assert container.execute(["/bin/sh", "-c", "exit 7"]) == 7
    code, out = capture(container, "/bin/sh", "-c",
                        "echo pid=$$; hostname; grep -E ' /(proc|sys|dev/pts) ' /proc/mounts; "
                        "grep CapBnd /proc/self/status; cat /proc/1/status | head -1", execute=True)
    assert code == 0
    assert "pid=2" in out  # pid 1 is the minimal init
    assert "\napp1\n" in f"\n{out}"
    assert "proc /proc proc" in out and "sysfs /sys sysfs ro," in out and "devpts /dev/pts devpts" in out
    bounding = int(out.split("CapBnd:")[1].split()[0], 16)
    assert not bounding & (1 << 16), "sys_module was dropped by lxc.cap.drop"
    assert bounding & (1 << 21), "sys_admin is kept"


def test_execute_reports_death_by_signal(make_container):
    container = make_container("app2")
    assert container.execute(["/bin/sh", "-c", "kill -TERM $$"]) == 128 + signal.SIGTERM


def test_execute_default_command_environment_and_cwd(make_container):
    # lxc.execute.cmd splits on white space as LXC does: one shell word with no blank in it.
    container = make_container("app3", config=(
        ("lxc.execute.cmd", "/bin/sh -c env>default.out;exit${IFS}3"),
        ("lxc.environment", "FOO=bar"),
        ("lxc.init.cwd", "/tmp"),
    ))
    assert container.execute() == 3, "execute without a command runs lxc.execute.cmd and passes on its status"
    rootfs = container.load_config().get("lxc.rootfs.path")
    with open(os.path.join(rootfs, "tmp", "default.out")) as handle:
        env = dict(line.split("=", 1) for line in handle.read().splitlines() if "=" in line)
    assert (env["FOO"], env["container"], env["PWD"]) == ("bar", "lxc", "/tmp")
    # An explicit command wins over the default one.
    assert container.execute(["/bin/sh", "-c", "echo $FOO $container $(pwd) > /.out"]) == 0
    with open(os.path.join(rootfs, ".out")) as handle:
        assert handle.read().split() == ["bar", "lxc", "/tmp"]
    os.unlink(os.path.join(rootfs, "tmp", "default.out"))
    container.set_config_item("lxc.execute.cmd", "")
    with pytest.raises(ConfigError) as refused:
        container.execute()
    assert str(refused.value) == f"{container.config_file_name}: no command given and lxc.execute.cmd is not set"
    assert not os.path.exists(os.path.join(rootfs, "tmp", "default.out"))


def test_start_attach_stop_destroy(make_container, lxcpath):
    container = make_container("sys1")
    assert container.state == st.STOPPED
    pid = container.start()
    assert container.state == st.RUNNING and container.init_pid == pid
    assert pid == _kernel_init(container.current_state().monitor_pid)
    assert container.wait("RUNNING", 5)
    code, out = capture(container, "/bin/sh", "-c", "cat /proc/1/comm; hostname; echo uid=$(id -u)")
    assert code == 0
    assert out.split() == ["init", "sys1", "uid=0"]
    assert container.attach_wait(["/bin/sh", "-c", "exit 5"]) == 5
    with pytest.raises(ContainerError, match="already running"):
        container.start()
    with pytest.raises(ContainerError, match="is running"):
        container.destroy()
    container.stop(timeout=20)
    assert container.state == st.STOPPED
    assert not os.path.exists(f"/proc/{pid}") or st.process_start_time(pid) is None
    container.destroy()
    assert not os.path.exists(os.path.join(lxcpath, "sys1"))


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        data = handle.read()
    return int(data[data.rindex(b")") + 2 :].split()[1])


def _nspid(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as handle:
        line = next(line for line in handle if line.startswith("NSpid:"))
    return [int(word) for word in line.split()[1:]]


def _kernel_init(monitor: int) -> int:
    """The container's init as the kernel shows it: the monitor's one child that is pid 1 of its own pid
    namespace (``NSpid: <host pid> 1``). The monitor is the server that adopted the container: its
    other children are the start worker leaving and workers of other commands, none in a pid namespace."""
    children = [int(name) for name in os.listdir("/proc") if name.isdigit() and _safe_parent(int(name)) == monitor]
    inits = [child for child in children if _safe_nspid(child)[1:] == [1]]
    assert len(inits) == 1, f"the monitor {monitor} has children {children}, pid 1 of a namespace: {inits}"
    assert _nspid(inits[0]) == [inits[0], 1]
    return inits[0]


def _safe_nspid(pid: int) -> list[int]:
    try:
        return _nspid(pid)
    except (OSError, StopIteration):
        return []


def _safe_parent(pid: int) -> int | None:
    try:
        return _parent(pid)
    except (OSError, ValueError):
        return None


def _cgroup_mounts() -> dict[str, str]:
    """Mount points of the cgroup hierarchies: ``""`` for cgroup2, else each v1 controller."""
    found = {}
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            left, right = line.split(" - ")
            fstype, _source, options = right.split()
            if fstype == "cgroup2":
                found.setdefault("", left.split()[4])
            elif fstype == "cgroup":
                for option in options.split(","):
                    found.setdefault(option, left.split()[4])
    return found


def _read_int(path: str) -> int | None:
    try:
        with open(path) as handle:
            return int(handle.read().split()[0])
    except (FileNotFoundError, ValueError):
        return None


def _kernel_usage(pid: int) -> dict[str, int]:
    """Memory, pids and CPU time of ``pid``'s cgroups read straight from the cgroup files, cgroup2's
    where it has the file, else the v1 controller's."""
    mounts = _cgroup_mounts()
    paths = {}
    with open(f"/proc/{pid}/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                if controller in mounts:
                    paths[controller] = mounts[controller] + path
    found: dict[str, int] = {}
    v2 = paths.get("")
    for key, leaf in (("memory", "memory.current"), ("pids", "pids.current")):
        value = _read_int(os.path.join(v2, leaf)) if v2 else None
        if value is not None:
            found[key] = value
    if v2 and os.path.exists(os.path.join(v2, "cpu.stat")):
        with open(os.path.join(v2, "cpu.stat")) as handle:
            found["cpu_ns"] = 1000 * int(dict(line.split() for line in handle)["usage_usec"])
    for key, controller, leaf in (("memory", "memory", "memory.usage_in_bytes"), ("pids", "pids", "pids.current"),
                                  ("cpu_ns", "cpuacct", "cpuacct.usage")):
        value = _read_int(os.path.join(paths[controller], leaf)) if controller in paths else None
        if value is not None:
            found.setdefault(key, value)
    return found


def test_info_matches_the_kernels_own_numbers(make_container):
    container = make_container("info1")
    init = container.start()
    try:
        before = _kernel_usage(init)
        info = container.info()
        after = _kernel_usage(init)
        assert set(before) == {"memory", "pids", "cpu_ns"}
        assert (info["pid"], info["monitor_pid"]) == (init, _parent(init))
        assert init == _kernel_init(info["monitor_pid"])
        for key in ("memory", "pids", "cpu_ns"):
            low, high = sorted((before[key], after[key]))
            assert low <= info[key] <= high, f"{key}: info says {info[key]}, the cgroup {before[key]}..{after[key]}"
        with open(f"/proc/{init}/comm") as handle:
            assert handle.read().strip() == "init"
        # No lxc.net.* keys: a netns of its own with lo alone, its id the one the kernel gives it.
        with RtnlSocket() as sock:
            assert info["netns_id"] == rtnl.get_nsid(sock, pid=init)
        assert (info["interfaces"], info["ipv4"], info["ipv6"]) == (["lo"], [], [])
    finally:
        container.stop(kill=True)
    assert container.info() == {"name": "info1", "state": st.STOPPED}


def test_stop_kills_an_init_that_ignores_the_halt_signal(make_container):
    # sleep as pid 1 installs no handler, so the kernel drops the halt signal (SIGUSR1 here, from the
    # busybox template) as it drops every unhandled signal sent to a pid namespace's init.
    container = make_container("deaf", config=(("lxc.init.cmd", "/bin/sleep 600"),))
    init = container.start()
    pidfd = os.pidfd_open(init)
    try:
        started = time.monotonic()
        container.stop(timeout=0.5)
        elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 10, f"stop(timeout=0.5) returned after {elapsed:.1f} s"
        assert container.state == st.STOPPED
        readable, _, _ = select.select([pidfd], [], [], 0)
        assert readable, "init still lives after stop returned"
    finally:
        os.close(pidfd)


def test_stop_kill_is_immediate_and_stop_of_stopped_is_an_error(make_container):
    container = make_container("sys2")
    container.start()
    started = time.monotonic()
    container.stop(kill=True)
    assert time.monotonic() - started < 5
    assert container.state == st.STOPPED
    with pytest.raises(ContainerError, match="not running"):
        container.stop()


def test_attach_clear_env_and_uid(make_container):
    container = make_container("sys3")
    container.start()
    try:
        code, out = capture(container, "/bin/sh", "-c", "env | sort")
        assert code == 0 and "container=lxc" in out
        rootfs = container.load_config().get("lxc.rootfs.path")
        os.mkdir(os.path.join(rootfs, "out"))
        os.chmod(os.path.join(rootfs, "out"), 0o777)
        code = container.attach_wait(["/bin/sh", "-c", "env > /out/env; id -u >> /out/env"], clear_env=True,
                                     uid=65534, gid=65534)
        assert code == 0
        with open(os.path.join(rootfs, "out", "env")) as handle:
            lines = handle.read().split()
        assert "65534" in lines and "container=lxc" in lines
        assert not any(line.startswith("PYTEST_") for line in lines)
        with pytest.raises(ContainerError, match="cannot execute /no/such"):
            container.attach_wait(["/no/such"])
    finally:
        container.stop(kill=True)


def test_destroy_force_and_managed_zero(make_container, lxcpath):
    container = make_container("sys4")
    container.start()
    container.destroy(force=True)
    assert not container.defined
    kept = make_container("keep", config=(("lxc.rootfs.managed", "0"),))
    kept.destroy()
    assert os.path.isfile(os.path.join(lxcpath, "keep", "config"))
    assert os.path.isdir(os.path.join(lxcpath, "keep", "rootfs", "bin"))
    # Remove by hand: the container says its storage is not ours.
    import shutil

    shutil.rmtree(os.path.join(lxcpath, "keep"))


def test_mount_target_through_symlink_stays_inside_rootfs(make_container):
    container = make_container("esc")
    rootfs = container.load_config().get("lxc.rootfs.path")
    os.rmdir(os.path.join(rootfs, "mnt"))
    os.symlink("/etc", os.path.join(rootfs, "mnt"))
    container.set_config_item("lxc.mount.entry", "tmpfs mnt/inner tmpfs create=dir 0 0")
    host_etc_before = set(os.listdir("/etc"))
    code, out = capture(container, "/bin/sh", "-c", "grep ' /etc/inner ' /proc/mounts", execute=True)
    assert code == 0, out
    assert "tmpfs /etc/inner tmpfs" in out
    assert os.path.isdir(os.path.join(rootfs, "etc", "inner"))
    assert set(os.listdir("/etc")) == host_etc_before  # nothing was created on the host's /etc


def test_mount_entry_options_and_optional(make_container, tmp_path):
    source = tmp_path / "shared"
    source.mkdir()
    (source / "hello").write_text("hi\n")
    container = make_container("mnt1", config=(
        ("lxc.mount.entry", f"{source} srv/data none bind,ro,create=dir 0 0"),
        ("lxc.mount.entry", "/no/such/source opt/x none bind,optional,create=dir 0 0"),
    ))
    code, out = capture(container, "/bin/sh", "-c",
                        "cat /srv/data/hello; touch /srv/data/x; echo status=$?; "
                        "grep -c ' /opt/x ' /proc/self/mountinfo || true", execute=True)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (source / "hello").read_text().strip() == "hi"
    assert lines[1:] == ["touch: /srv/data/x: Read-only file system", "status=1", "0"], out
    assert sorted(os.listdir(source)) == ["hello"]


def test_threads_start_and_stop_different_containers(lxcpath, host):
    names = [f"t{i}" for i in range(8)]
    errors: list[BaseException] = []
    outputs: dict[str, int] = {}

    def life(name: str) -> None:
        try:
            container = Container(name, lxcpath)
            container.create("busybox")
            container.start()
            outputs[name] = container.attach_wait(["/bin/sh", "-c", f"test $(hostname) = {name}"])
            container.stop(kill=True)
            container.destroy()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=life, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert not errors, errors
        assert outputs == dict.fromkeys(names, 0)
    finally:
        for name in names:
            leftover = Container(name, lxcpath)
            if leftover.defined:
                leftover.destroy(force=True)
    host.assert_clean()


def test_dead_monitor_is_detected_and_cleaned(per_container_monitor, make_container):
    container = make_container("dead1")
    container.start()
    monitor = container.current_state().monitor_pid
    os.kill(monitor, signal.SIGKILL)
    # With the default pdeath signal (SIGKILL) init dies with its monitor.
    assert container.wait("STOPPED", 10)
    with pytest.raises(ContainerError, match="not running"):
        container.stop()
    container.start()
    container.stop(kill=True)


def test_pdeath_zero_keeps_init_alive_without_monitor(per_container_monitor, make_container):
    container = make_container("dead2", config=(("lxc.monitor.signal.pdeath", "0"),))
    init = container.start()
    init_start = st.process_start_time(init)
    monitor = container.current_state().monitor_pid
    pidfd = os.pidfd_open(monitor)
    try:
        os.kill(monitor, signal.SIGKILL)
        # The monitor's pidfd turns readable once it has exited, after the kernel sent its children
        # their parent-death signal: a SIGKILL would have reached init by now.
        readable, _, _ = select.select([pidfd], [], [], 10)
        assert readable, "the monitor did not die"
    finally:
        os.close(pidfd)
    # Something that needs init alive: entering its namespaces and seeing it as pid 1.
    assert container.attach_wait(["/bin/sh", "-c", "kill -0 1"]) == 0
    assert st.process_start_time(init) == init_start
    assert container.state == st.RUNNING
    container.stop(kill=True)
    assert container.state == st.STOPPED


def test_cli_lifecycle(lxcpath, rundir, host):
    env = dict(os.environ)
    assert run_cli("-P", lxcpath, "create", "cli1", "-t", "busybox", env=env).returncode == 0
    try:
        result = run_cli("-P", lxcpath, "start", "cli1", env=env)
        assert result.returncode == 0, result.stderr
        info = json.loads(run_cli("-P", lxcpath, "info", "cli1", "--format", "json", env=env).stdout)
        assert info["state"] == "RUNNING"
        assert info["pid"] == _kernel_init(info["monitor_pid"])
        assert run_cli("-P", lxcpath, "ls", env=env).stdout.split() == ["cli1"]
        listing = json.loads(run_cli("-P", lxcpath, "ls", "--fancy", "--format", "json", env=env).stdout)
        assert listing[0]["name"] == "cli1" and listing[0]["state"] == "RUNNING"
        assert run_cli("-P", lxcpath, "attach", "cli1", "--", "/bin/sh", "-c", "exit 4", env=env).returncode == 4
        assert run_cli("-P", lxcpath, "wait", "cli1", "STOPPED", "-t", "0.2", env=env).returncode == 1
        assert run_cli("-P", lxcpath, "stop", "cli1", "-k", env=env).returncode == 0
        assert run_cli("-P", lxcpath, "execute", "cli1", "--", "/bin/sh", "-c", "exit 9", env=env).returncode == 9
        missing = run_cli("-P", lxcpath, "execute", "cli1", "--", "/no/such/binary", env=env)
        assert missing.returncode == 1
        assert "stage 'exec'" in missing.stderr and "/no/such/binary" in missing.stderr
        assert "Traceback" not in missing.stderr
    finally:
        run_cli("-P", lxcpath, "destroy", "-f", "cli1", env=env)
    host.assert_clean()


def test_create_failure_leaves_nothing(lxcpath, host):
    container = Container("bad", lxcpath)
    with pytest.raises(ContainerError, match="unknown template"):
        container.create("nosuch")
    with pytest.raises(ContainerError, match="dir template"):
        container.create("dir")
    with pytest.raises(ConfigErrors, match=r"lxc\.uts\.nmae = 'x': unknown key \(did you mean 'lxc\.uts\.name'\?\)"):
        container.create("busybox", config=(("lxc.uts.nmae", "x"),))
    assert os.listdir(lxcpath) == []
    host.assert_clean()


def test_multithreaded_caller_uses_exec_helper(make_container):
    container = make_container("mt1")
    stop = threading.Event()
    spinner = threading.Thread(target=stop.wait)
    spinner.start()
    try:
        assert container.execute(["/bin/sh", "-c", "exit 6"]) == 6
        container.start()
        assert container.attach_wait(["/bin/true"]) == 0
        container.stop(kill=True)
    finally:
        stop.set()
        spinner.join()


def test_python_library_is_importable_without_heavy_modules():
    code = ("import sys, lxcframe; c = lxcframe.Container('x', '/nonexistent'); "
            "print(any(m.startswith('pyroute2') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_cli_execute_with_a_config_file_and_no_container_dir(tmp_path, rundir, host, make_container):
    source = make_container("src")
    rootfs = source.load_config().get("lxc.rootfs.path")
    rcfile = tmp_path / "app.conf"
    rcfile.write_text(f"lxc.rootfs.path = dir:{rootfs}\nlxc.uts.name = fromfile\n"
                      "lxc.mount.auto = proc:rw\nlxc.cgroup.relative = 1\n")
    result = run_cli("-P", str(tmp_path / "none"), "execute", "-f", str(rcfile), "--", "/bin/sh", "-c",
                     "test $(hostname) = fromfile && exit 12", env=dict(os.environ))
    assert result.returncode == 12, result.stderr


def test_daemon_monitors_are_forked_by_one_supervisor_that_leaves_after_them(per_container_monitor,
                                                                             make_container, rundir):
    first, second = make_container("sup1"), make_container("sup2")
    first.start()
    second.start()
    monitors = [c.current_state().monitor_pid for c in (first, second)]
    parents = {_parent(m) for m in monitors}
    assert len(parents) == 1
    with open(f"/proc/{parents.pop()}/cmdline", "rb") as handle:
        assert b"lxcframe.supervisor" in handle.read()
    first.stop(kill=True)
    second.stop(kill=True)
    deadline = time.monotonic() + 10
    while os.path.exists(os.path.join(rundir, "supervisor.sock")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(os.path.join(rundir, "supervisor.sock"))


@pytest.mark.parametrize("how", ["environment", "argument"])
def test_without_the_supervisor_the_caller_forks_the_monitor(make_container, monkeypatch, rundir, how):
    if how == "environment":
        monkeypatch.setenv("LXCFRAME_SUPERVISOR", "0")
    container = make_container("nosup", **({"server": False} if how == "argument" else {}))
    container.start()
    try:
        monitor = container.current_state().monitor_pid
        with open(f"/proc/{_parent(monitor)}/cmdline", "rb") as handle:
            assert b"lxcframe.supervisor" not in handle.read()
        assert not os.path.exists(os.path.join(rundir, "supervisor.sock"))  # no server was even started
    finally:
        container.stop(kill=True)


def test_execute_is_running_only_once_its_init_takes_signals(make_container, lxcpath):
    # The kernel drops a SIGTERM sent from the host to a pid namespace's init that neither handles nor
    # blocks it: the instant after tini's execve. A stop that comes as soon as RUNNING shows must count.
    container = make_container("app4")
    for _round in range(12):
        client = subprocess.Popen([sys.executable, "-m", "lxcframe", "-P", lxcpath, "execute", "app4", "--",
                                   "/bin/sleep", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while container.state != st.RUNNING and time.monotonic() < deadline:
                time.sleep(0.001)
            status = Path(f"/proc/{container.init_pid}/status").read_text()
            blocked, ignored = (int(status.split(f"{field}:")[1].split()[0], 16) for field in ("SigBlk", "SigIgn"))
            # tini blocks what it collects, then ignores SIGTTOU (waiting, it shows the collected unblocked).
            assert blocked & (1 << (signal.SIGTERM - 1)) or ignored & (1 << (signal.SIGTTOU - 1))
            client.send_signal(signal.SIGTERM)
            assert client.wait(timeout=20) == 128 + signal.SIGTERM
        finally:
            if client.poll() is None:
                client.kill()
            client.communicate(timeout=30)


def test_waiting_for_an_init_to_take_signals_waits_for_its_mask():
    from lxcframe.monitor import _await_signal_collection

    with subprocess.Popen([sys.executable, "-c", "import signal, sys, time; time.sleep(0.3); "
                           "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}); "
                           "print(flush=True); time.sleep(30)"], stdout=subprocess.PIPE) as late:
        try:
            began = time.monotonic()
            _await_signal_collection(late.pid)
            assert time.monotonic() - began >= 0.25
            assert late.stdout is not None and late.stdout.readline() == b"\n"
        finally:
            late.kill()
