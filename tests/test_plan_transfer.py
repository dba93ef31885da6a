"""The start plan is built once, by the caller, and crosses to the monitor as it is.

Through the supervisor (its socket) and through the helper monitor of a multi-threaded caller
(``python -m lxcframe.monitor``, a sealed memfd), the monitor runs the caller's plan: a config changed
on disk after the plan was built changes nothing, and a config that no longer validates does not stop
the start. Neither the supervisor nor any monitor gets the caller's environment, only the variables
the runtime reads. An attach keeps the caller's disabled plugins, in the caller's process or in the
helper of a threaded caller.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import attrs
import pytest

from lxcframe import launcher, start_request, supervisor, transfer
from lxcframe.config.model import load_text
from lxcframe.planner import build_plan
from lxcframe.plugin_manager import Plugins
from lxcframe.spawning import RUNTIME_ENV
from lxcframe.start_request import StartRequest

from .conftest import another_thread, run_cli

SECRET = "s3cr3t-of-the-caller-not-for-monitors"
CAP_SYS_ADMIN = 21


# --- helpers -------------------------------------------------------------------------------------


def _environ(pid: int) -> dict[str, str]:
    """A process's initial environment as the kernel shows it (not what Python changed since)."""
    with open(f"/proc/{pid}/environ", "rb") as handle:
        items = [item.decode() for item in handle.read().split(b"\0") if item]
    return dict(item.partition("=")[::2] for item in items)


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as handle:
        return handle.read().strip()


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        data = handle.read()
    return int(data[data.rindex(b")") + 2 :].split()[1])


def _init_environ(container: Any) -> dict[str, str]:
    return _environ(container.init_pid)


def _rewrite_config_after_the_plan(monkeypatch: pytest.MonkeyPatch, container: Any) -> list[str]:
    """Once the caller has built its plan, the config on disk changes: the marker takes another value
    and a line no plugin accepts is added. A monitor that read the config again would start with the
    other value, or refuse the start."""
    calls: list[str] = []
    real_daemon, real_foreground = launcher.start_daemon, launcher.run_foreground

    def rewrite() -> None:
        path = container.config_file_name
        with open(path) as handle:
            text = handle.read()
        assert "MARK=from-the-plan" in text
        with open(path, "w") as handle:
            handle.write(text.replace("MARK=from-the-plan", "MARK=read-again") + "lxc.no.such.key = 1\n")
        calls.append("rewritten")

    def start_daemon(plugins: Any, plan: Any, *, server: bool | None = None) -> int:
        rewrite()
        return real_daemon(plugins, plan, server=server)

    def run_foreground(plugins: Any, plan: Any, started: Any = None) -> int:
        rewrite()
        return real_foreground(plugins, plan, started)

    monkeypatch.setattr(launcher, "start_daemon", start_daemon)
    monkeypatch.setattr(launcher, "run_foreground", run_foreground)
    return calls




def _assert_only_runtime_variables(pid: int, what: str) -> None:
    environ = _environ(pid)
    assert "LXCFRAME_TEST_SECRET" not in environ, f"the caller's environment reached the {what}"
    assert SECRET not in "".join(environ.values())
    assert set(environ) <= {*RUNTIME_ENV, "PYTHONPATH"}, f"{what}: {sorted(set(environ) - set(RUNTIME_ENV))}"
    assert environ["LXCFRAME_RUNDIR"] == os.environ["LXCFRAME_RUNDIR"]  # what the runtime reads does cross


# --- real starts ---------------------------------------------------------------------------------


def test_supervisor_runs_the_callers_plan_without_the_callers_environment(per_container_monitor,
                                                                          make_container, monkeypatch):
    monkeypatch.setenv("LXCFRAME_TEST_SECRET", SECRET)
    container = make_container("plan-sup", config=(("lxc.environment", "MARK=from-the-plan"),))
    rewritten = _rewrite_config_after_the_plan(monkeypatch, container)
    container.start()
    try:
        assert rewritten == ["rewritten"]
        assert _init_environ(container)["MARK"] == "from-the-plan"
        monitor = container.current_state().monitor_pid
        sup = _parent(monitor)
        assert _comm(sup) == "lxcframe-sup", "this start did not go through the supervisor"
        _assert_only_runtime_variables(monitor, "monitor")
        _assert_only_runtime_variables(sup, "supervisor")
    finally:
        container.stop(kill=True)


def test_helper_monitor_of_a_threaded_caller_runs_the_callers_plan(make_container, monkeypatch):
    monkeypatch.setenv("LXCFRAME_SUPERVISOR", "0")
    monkeypatch.setenv("LXCFRAME_TEST_SECRET", SECRET)
    container = make_container("plan-helper", config=(("lxc.environment", "MARK=from-the-plan"),))
    rewritten = _rewrite_config_after_the_plan(monkeypatch, container)
    with another_thread():
        container.start()
    try:
        assert rewritten == ["rewritten"]
        assert _init_environ(container)["MARK"] == "from-the-plan"
        monitor = container.current_state().monitor_pid
        assert _comm(monitor) == "lxcf:plan-helpe"  # the kernel keeps 15 bytes of the name
        _assert_only_runtime_variables(monitor, "helper monitor")
    finally:
        container.stop(kill=True)


def test_foreground_helper_of_a_threaded_caller_runs_the_callers_plan(make_container, monkeypatch, tmp_path):
    monkeypatch.setenv("LXCFRAME_TEST_SECRET", SECRET)
    container = make_container("plan-exec", config=(("lxc.environment", "MARK=from-the-plan"),))
    rewritten = _rewrite_config_after_the_plan(monkeypatch, container)
    rootfs = container.load_config().get("lxc.rootfs.path")
    with another_thread():
        code = container.execute(["/bin/sh", "-c", 'echo "$MARK" > /mark; test "$MARK" = from-the-plan'])
    assert rewritten == ["rewritten"]
    with open(os.path.join(rootfs, "mark")) as handle:
        assert handle.read() == "from-the-plan\n"
    assert code == 0


# --- attach keeps the caller's disabled plugins -------------------------------------------------------


def _bounding_set(container: Any) -> int:
    rootfs = container.load_config().get("lxc.rootfs.path")
    path = os.path.join(rootfs, "status")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    code = container.attach_wait(["/bin/sh", "-c", "cat /proc/self/status > /status"])
    assert code == 0
    with open(path) as handle:
        line = next(line for line in handle if line.startswith("CapBnd:"))
    os.unlink(path)
    return int(line.split()[1], 16)


def test_attach_of_a_threaded_caller_keeps_its_disabled_plugins(make_container, lxcpath):
    from lxcframe.container import Container

    container = make_container("attach-caps", config=(("lxc.cap.drop", "sys_admin"),))
    container.start()
    try:
        assert not _bounding_set(container) >> CAP_SYS_ADMIN & 1  # caps enabled: dropped inside
        without_caps = Container("attach-caps", lxcpath, plugins=Plugins(disable=["caps"]))
        assert _bounding_set(without_caps) >> CAP_SYS_ADMIN & 1
        with another_thread():
            assert not _bounding_set(container) >> CAP_SYS_ADMIN & 1
            assert _bounding_set(without_caps) >> CAP_SYS_ADMIN & 1, "the attach helper loaded caps"
    finally:
        container.stop(kill=True)


def test_cli_attach_with_a_plugin_disabled_runs_without_it(make_container, lxcpath):
    container = make_container("cli-caps", config=(("lxc.cap.drop", "sys_admin"),))
    container.start()
    try:
        script = "grep CapBnd /proc/self/status"
        dropped = run_cli("-P", lxcpath, "attach", container.name, "--", "/bin/sh", "-c", script)
        kept = run_cli("-p", "no:caps", "-P", lxcpath, "attach", container.name, "--", "/bin/sh", "-c", script)
        assert dropped.returncode == 0 and kept.returncode == 0, (dropped.stderr, kept.stderr)
        assert not int(dropped.stdout.split()[1], 16) >> CAP_SYS_ADMIN & 1
        assert int(kept.stdout.split()[1], 16) >> CAP_SYS_ADMIN & 1
    finally:
        container.stop(kill=True)


# --- the transfer format -------------------------------------------------------------------------


_CONFIG = """\
lxc.rootfs.path = /srv/rootfs
lxc.uts.name = transfer
lxc.mount.entry = /srv/data data none bind,create=dir 0 0
lxc.mount.auto = proc:mixed sys:ro
lxc.idmap = u 0 100000 65536
lxc.idmap = g 0 100000 65536
lxc.cap.drop = sys_admin sys_module
lxc.environment = A=1
lxc.environment = B=two words
lxc.prlimit.nofile = 1024:2048
lxc.init.cmd = /sbin/init --verbose
lxc.signal.halt = SIGRTMIN+3
"""


@pytest.fixture
def a_plan(tmp_path) -> tuple[Any, Any]:
    plugins = Plugins(environ={"LXCFRAME_HOST_CONFIG": str(tmp_path / "none.toml")})
    config = load_text(_CONFIG, plugins.key_registry(), str(tmp_path / "config"))
    return build_plan(plugins, "transfer", "/var/lib/lxcframe", config, None, "daemon"), plugins


def test_round_trip_of_a_plan_equals_the_original(a_plan):
    plan, plugins = a_plan
    request = StartRequest.for_plan(plan, plugins, detach=True)
    back, loaded = start_request.decode(transfer.parse_json(transfer.dumps(request)))
    assert back == request
    assert back.plan == plan
    assert back.plan.config.located("lxc.signal.halt").line == 12  # errors still name file and line
    assert back.plan.config.where("lxc.cap.drop") == f"{plan.config.path}:7: "
    assert {type(v.value).__name__ for v in back.plan.config.multi["lxc.idmap"]} == {"IdMapEntry"}
    assert sorted(loaded.disabled) == list(request.plugins.disabled)


def _tampered(request: StartRequest, change: Any) -> Any:
    document = transfer.wrap(request)
    change(document["data"])
    return document


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["fields"]["plan"]["fields"].update(name="../escape"), "plan.name: invalid container name"),
    (lambda d: d["fields"]["plan"]["fields"].update(uid="0"), ".plan.uid: '0' is not a int"),
    (lambda d: d["fields"]["plan"]["fields"].pop("argv"), "StartPlan misses field argv"),
    (lambda d: d["fields"]["plan"]["fields"].update(shell="/bin/sh"), "StartPlan has no field shell"),
    (lambda d: d["fields"]["plan"].update({"$attrs": "os:_wrap_close"}), "class 'os:_wrap_close' is not lxcframe's"),
    (lambda d: d["fields"]["plan"].update({"$attrs": "lxcframe.nothing:Here"}), "no attrs class"),
    (lambda d: d["fields"]["plan"]["fields"].update(lxcpath="/var/lib/../../etc"), "not a normalised absolute path"),
    (lambda d: d["fields"]["plan"]["fields"].update(argv={"$tuple": [], "x": 1}),
     ".plan.argv: not an encoded value: {'$tuple': [], 'x': 1}"),
])
def test_a_malformed_request_is_refused_with_where(a_plan, change, message):
    plan, plugins = a_plan
    document = _tampered(StartRequest.for_plan(plan, plugins, detach=True), change)
    with pytest.raises(transfer.TransferError) as caught:
        start_request.decode(document)
    assert message in str(caught.value)


def test_another_version_is_refused(a_plan):
    plan, plugins = a_plan
    document = transfer.wrap(StartRequest.for_plan(plan, plugins, detach=True))
    document["version"] = transfer.VERSION + 1
    with pytest.raises(transfer.TransferError, match=f"this installation reads version {transfer.VERSION}"):
        start_request.decode(document)


def test_supervisor_refuses_a_malformed_plan_before_forking(make_container, rundir):
    container = make_container("malformed")
    plugins = Plugins()
    request = StartRequest.for_plan(container._plan(None, "daemon"), plugins, detach=True)
    request = attrs.evolve(request, plan=attrs.evolve(request.plan, name="../../etc"))
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        # A healthy request first, so that a supervisor is running to ask.
        assert not supervisor.submit(request, supervisor.fingerprint(plugins), write_end)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with client:
            client.connect(supervisor.socket_path())
            socket.send_fds(client, [supervisor.request_message(request, supervisor.fingerprint(plugins))],
                            [write_end])
            client.settimeout(10)
            answer = client.recv(256).decode()
        assert answer.startswith("no: malformed start request: plan.name: invalid container name '../../etc'")
    finally:
        os.close(write_end)
        os.close(read_end)
    assert container.current_state() is None


def test_the_status_notifier_closes_its_pipe_when_the_caller_has_gone_and_writes_once():
    from lxcframe import start_status

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    os.close(read_end)  # the caller has gone: the write fails with EPIPE
    start_status.notifier(write_end)({"ok": True})
    with pytest.raises(OSError):
        os.fstat(write_end)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    notify = start_status.notifier(write_end)
    notify({"ok": True, "init_pid": 7})
    reused_read, reused_write = os.pipe2(os.O_CLOEXEC)  # may take write_end's number again
    try:
        notify({"ok": False})  # a second record goes nowhere, whatever the number names now
        os.close(reused_write)
        assert os.read(reused_read, 100) == b""
        assert os.read(read_end, 100) == b'{"ok": true, "init_pid": 7}\n'
    finally:
        os.close(reused_read)
        os.close(read_end)
