"""The plan's typed parts are decided once, by the caller; what a run keeps, hands over and saves is typed.

* ``lxcframe_plan``: each plugin's frozen part (seccomp's compiled program, caps, idmap's identity, the
  network devices, AppArmor's settings) is in the caller's plan and crosses to the monitor unchanged.
  A start through the supervisor and one through the helper monitor confine the container with a
  policy file removed once the caller planned: nothing outside the caller compiled it again.
* :class:`lxcframe.stash.Stash`: keys typed for mypy, a missing key named in the error.
* :class:`lxcframe.handover.Handover`: frozen messages and named descriptors, nothing by string.
* ``state.json``: plugins' typed records round trip; the old untyped format is refused clearly.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest

from lxcframe import launcher, start_request, syscalls, transfer
from lxcframe import state as st
from lxcframe.context import Identity
from lxcframe.errors import ConfigError, ContainerError
from lxcframe.handover import Handover, Received
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins.apparmor.settings import AppArmorSettings
from lxcframe.plugins.caps import CapsPart
from lxcframe.plugins.cgroup.placement import CgroupRecord
from lxcframe.plugins.cgroup.settings import CgroupSettings
from lxcframe.plugins.hooks import HookPart
from lxcframe.plugins.keyring import KeyringPart
from lxcframe.plugins.netns.config import NetPart
from lxcframe.plugins.netns.records import DeviceRecord, NetnsRecord
from lxcframe.plugins.prlimit import Prlimit, PrlimitPart
from lxcframe.plugins.procfs import ProcFile, ProcPart
from lxcframe.plugins.seccomp import SeccompPart
from lxcframe.plugins.sysctl import Sysctl, SysctlPart
from lxcframe.plugins.sysfs import SysfsPart
from lxcframe.records import Records
from lxcframe.start_request import StartRequest
from lxcframe.stash import DescriptorKey, Stash, StashKey

from .conftest import another_thread, daemon_plans_without_keys, plan_of

CAP_SYS_ADMIN, CAP_SYS_MODULE = 21, 16
DENY_MKDIR = "2\nblacklist\nmkdir errno 1\n"


def _policy(directory: Path, text: str = DENY_MKDIR) -> Path:
    path = directory / "policy.seccomp"
    path.write_text(text)
    return path


def _compiled(path: Path) -> bytes:
    """The program the seccomp builder makes of the policy at ``path``, independently of the plugin."""
    from lxcframe.plugins.seccomp import builder
    from lxcframe.plugins.seccomp.policy import read_policy

    return builder.compile_bpf(builder.build(read_policy(str(path))))


# --- the parts of a real config ------------------------------------------------------------------


def _plan(plugins: Plugins, tmp_path: Path, text: str) -> Any:
    return plan_of(plugins, tmp_path, text, name="parts")


def test_parts_of_a_real_config_are_built_in_the_caller_and_cross_unchanged(tmp_path, caller_plugins):
    policy = _policy(tmp_path)
    plan = _plan(caller_plugins, tmp_path, textwrap.dedent(f"""\
        lxc.seccomp.profile = {policy}
        lxc.cap.drop = sys_admin sys_module
        lxc.no_new_privs = 1
        lxc.idmap = u 0 100000 65536
        lxc.idmap = g 0 100000 65536
        lxc.net.0.type = veth
        lxc.net.0.link = br-none
        lxc.net.0.ipv4.address = 192.0.2.7/24
        lxc.apparmor.profile = unconfined
        lxc.apparmor.allow_nesting = 1
        """))
    seccomp = plan.part(SeccompPart)
    assert seccomp.profile == str(policy)
    assert seccomp.program == _compiled(policy) and len(seccomp.program) % 8 == 0  # sock_filter: 8 bytes
    assert plan.part(CapsPart) == CapsPart(drop=(CAP_SYS_MODULE, CAP_SYS_ADMIN), no_new_privs=True)
    assert plan.part(Identity) == Identity(0, 0)
    [device] = plan.part(NetPart).devices
    assert (device.index, device.type, device.link, device.ipv4[0].address) == (0, "veth", "br-none", "192.0.2.7")
    assert plan.part(AppArmorSettings) == AppArmorSettings("unconfined", False, True, (), ("lxc.apparmor.profile",))
    # Crossing to the supervisor or a helper monitor (transfer.py) changes nothing.
    request = StartRequest.for_plan(plan, caller_plugins, detach=True)
    back, _plugins = start_request.decode(transfer.parse_json(transfer.dumps(request)))
    assert back.plan.parts == plan.parts
    assert back.plan.part(SeccompPart).program == seccomp.program


def test_a_plan_without_the_part_says_which_class_is_missing(tmp_path, caller_plugins):
    plan = _plan(caller_plugins, tmp_path, "")
    assert plan.part_or_none(SeccompPart) is None and plan.part_or_none(Identity) is None
    with pytest.raises(KeyError, match=r"the plan has no lxcframe\.plugins\.seccomp\.SeccompPart part"):
        plan.part(SeccompPart)


def test_a_policy_the_builder_refuses_is_a_config_error_at_its_line(tmp_path, caller_plugins):
    # Parses (so validation passes), but libseccomp refuses a rule whose action is the default one.
    policy = _policy(tmp_path, "2\nblacklist\nmkdir allow\n")
    with pytest.raises(ConfigError) as caught:
        _plan(caller_plugins, tmp_path, f"# a comment\nlxc.seccomp.profile = {policy}\n")
    err = caught.value
    assert (err.path, err.line, err.key) == (str(tmp_path / "config"), 3, "lxc.seccomp.profile")
    assert str(err).startswith(f"{tmp_path / 'config'}:3: lxc.seccomp.profile: {policy}:3: cannot add the rule "
                               "for 'mkdir'")


# --- the policy is compiled once, by the caller ----------------------------------------------------


def _remove_policy_after_the_plan(monkeypatch: pytest.MonkeyPatch, policy: Path) -> list[str]:
    """Once the caller has built its plan, the policy file goes: a monitor, a supervisor or a child
    that compiled the policy again would fail to start the container."""
    removed: list[str] = []
    real_daemon = launcher.start_daemon

    def start_daemon(plugins: Any, plan: Any, *, server: bool | None = None) -> int:
        assert plan.part(SeccompPart).program  # compiled while planning
        policy.unlink()
        removed.append(str(policy))
        return real_daemon(plugins, plan, server=server)

    monkeypatch.setattr(launcher, "start_daemon", start_daemon)
    return removed


def _init_seccomp(pid: int) -> tuple[str, str]:
    with open(f"/proc/{pid}/status") as handle:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in handle if ":\t" in line)
    return fields["Seccomp"], fields["Seccomp_filters"]


def _read_fifo(path: Path, timeout: float = 30.0) -> bytes:
    """What a writer puts into the fifo at ``path``: waits for it, up to ``timeout`` seconds."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"nothing written to {path} in {timeout} s"
        return os.read(fd, 4096)
    finally:
        os.close(fd)




@pytest.mark.parametrize("through", ["supervisor", "helper monitor"])
def test_the_policy_is_compiled_by_the_caller_only(make_container, monkeypatch, tmp_path, through):
    if through == "helper monitor":
        monkeypatch.setenv("LXCFRAME_SUPERVISOR", "0")
    policy = _policy(tmp_path)
    container = make_container("pp-" + through.split()[0][:6], config=(("lxc.seccomp.profile", str(policy)),))
    removed = _remove_policy_after_the_plan(monkeypatch, policy)
    rootfs = Path(container.load_config().get("lxc.rootfs.path"))
    # Init itself tries what the policy denies, then leaves its answer in a fifo the test reads.
    os.mkfifo(rootfs / "rc")
    script = "mkdir /made 2>/dev/null; echo rc=$? > /rc; exec sleep 1000"
    with another_thread() if through == "helper monitor" else contextlib.nullcontext():
        container.start(["/bin/sh", "-c", script])
    try:
        assert removed == [str(policy)] and not policy.exists()
        # Filter mode, one filter: the caller's program confines init.
        assert _init_seccomp(container.init_pid) == ("2", "1")
        assert _read_fifo(rootfs / "rc") == b"rc=1\n"
        assert not (rootfs / "made").exists()
    finally:
        container.stop(kill=True)


# --- the stash ---------------------------------------------------------------------------------------


def test_stash_keys_are_objects_and_a_missing_one_is_named():
    count, names = StashKey[int]("count"), StashKey[list[str]]("names")
    stash = Stash()
    stash[count] = 3
    assert stash[count] == 3 and stash.get(names, None) is None and count in stash and names not in stash
    assert stash.setdefault(names, ["a"]) == ["a"] and stash.pop(names, None) == ["a"] and len(stash) == 1
    another = StashKey[int]("count")  # same description, another key: no collision
    assert another not in stash
    with pytest.raises(KeyError, match="nothing stashed under <StashKey count>"):
        stash[another]
    del stash[count]
    with pytest.raises(KeyError, match="nothing stashed under <StashKey count>"):
        del stash[count]


def test_a_descriptor_key_name_is_unique():
    DescriptorKey("test-plan-parts-unique")
    with pytest.raises(ValueError, match="'test-plan-parts-unique' exists already"):
        DescriptorKey("test-plan-parts-unique")


_MYPY_SNIPPET = """\
from lxcframe.stash import Stash, StashKey

COUNT = StashKey[int]("count")
stash = Stash()
stash[COUNT] = 1
total: int = stash[COUNT] + stash.get(COUNT, 0)
stash[COUNT] = "one"
label: str = stash[COUNT]
"""


def test_mypy_checks_what_a_stash_key_holds(tmp_path):
    from mypy import api

    snippet = tmp_path / "snippet.py"
    snippet.write_text(_MYPY_SNIPPET)
    out, _err, status = api.run(["--no-error-summary", "--cache-dir", str(tmp_path / "cache"),
                                 "--follow-imports", "silent", str(snippet)])
    errors = sorted(line.split(":")[1] for line in out.splitlines() if ": error:" in line)
    # The two wrong lines, and only them: a str stored under an int key, an int read as a str.
    assert errors == ["7", "8"], out
    assert status == 1


# --- the hand-over at a barrier ------------------------------------------------------------------------


@attrs.frozen
class _Note:
    text: str
    data: bytes


_NOTE_FD = DescriptorKey("test-plan-parts-note")


def test_handover_carries_typed_messages_and_named_descriptors():
    handover = Handover()
    handover.send(_Note("first", b"\x00\x01"))
    handover.send(_Note("second", b"\xff" * 3))  # one per class: the last one stands
    read_end, write_end = os.pipe()
    handover.send_fd(_NOTE_FD, read_end)
    with pytest.raises(ValueError, match="already waiting"):
        handover.send_fd(_NOTE_FD, write_end)
    with pytest.raises(TypeError, match="frozen attrs"):
        handover.send({"text": "a dict"})
    messages, fds = handover.drain()
    assert fds == {"test-plan-parts-note": read_end}
    assert handover.drain() == ({}, {})  # drained
    # Over the channel: JSON.
    received = Received()
    received.add(json.loads(json.dumps(messages)), fds)
    assert received.message(_Note) == _Note("second", b"\xff" * 3)
    assert received.message(Identity) is None
    assert received.take_fd(_NOTE_FD) == read_end and received.take_fd(_NOTE_FD) is None
    os.close(read_end)
    os.close(write_end)


def test_bytes_cross_as_base64():
    program = bytes(range(256)) * 64
    encoded = transfer.encode(program)
    assert transfer.decode(encoded, bytes) == program
    assert len(json.dumps(encoded)) < len(program) * 4 // 3 + 32  # not a list of numbers
    with pytest.raises(transfer.TransferError, match=r"\$bytes holds 'not base64!', not base64"):
        transfer.decode({"$bytes": "not base64!"}, bytes)


# --- state records -----------------------------------------------------------------------------------


def _state(records: Records) -> st.ContainerState:
    return st.ContainerState("rec", "/var/lib/lxcframe", st.STOPPED, records=records.encoded())


def test_state_records_round_trip_through_the_state_file(rundir):
    records = Records()
    netns = NetnsRecord(False, 7, (DeviceRecord(0, "veth", name="eth0", host="vethAbc", host_index=42),))
    records.put(netns)
    records.put(CgroupRecord(()))
    st.write_state(_state(records))
    back = st.read_state("/var/lib/lxcframe", "rec")
    try:
        assert back is not None
        assert back.record(NetnsRecord) == netns
        assert back.record(CgroupRecord) == CgroupRecord(())
        assert back.record(Identity) is None  # nothing of that class was recorded
    finally:
        st.remove_runtime("/var/lib/lxcframe", "rec")


def test_a_malformed_record_names_its_class(rundir):
    records = Records()
    records.put(NetnsRecord(True))
    encoded = records.encoded()
    [(name, value)] = encoded.items()
    value["fields"]["shared"] = "yes"
    state = st.ContainerState("rec", "/var/lib/lxcframe", st.STOPPED, records={name: value})
    with pytest.raises(ContainerError, match=r"rec: malformed NetnsRecord record in the state file: .shared: 'yes' "
                                             r"is not a bool"):
        state.record(NetnsRecord)


def test_a_state_file_of_the_untyped_format_is_refused_clearly(rundir):
    directory = st.runtime_dir("/var/lib/lxcframe", "old")
    st.make_private_dirs(directory)
    path = os.path.join(directory, "state.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"name": "old", "lxcpath": "/var/lib/lxcframe", "state": "RUNNING",
                   "plugins": {"netns": {"shared": True}}}, handle)
    try:
        with pytest.raises(ContainerError, match=r"old: malformed state file .*state\.json: written by an earlier "
                                                 r"lxcframe \(untyped 'plugins' records\)"):
            st.read_state("/var/lib/lxcframe", "old")
    finally:
        st.remove_runtime("/var/lib/lxcframe", "old")


def test_a_started_container_records_its_network_typed(make_container):
    container = make_container("pp-rec", config=(("lxc.net.0.type", "empty"),))
    assert container.execute(["/bin/sh", "-c", "exit 0"]) == 0
    container = make_container("pp-rec2", config=(("lxc.net.0.type", "empty"),))
    container.start()
    try:
        state = container.current_state()
        record = state.record(NetnsRecord)
        assert record is not None and record.shared is False and record.devices == (DeviceRecord(0, "empty"),)
        assert isinstance(record.nsid, int)
        cgroups = state.record(CgroupRecord)
        assert cgroups is not None and cgroups.placed and all(p.init.endswith("lxc.payload.pp-rec2")
                                                              for p in cgroups.placed)
    finally:
        container.stop(kill=True)


# --- every plugin decides its data once, in the caller -------------------------------------------------


def test_the_parts_of_prlimit_sysctl_proc_sysfs_keyring_hooks_and_cgroup_are_exact(tmp_path, caller_plugins):
    config = tmp_path / "config"
    plan = _plan(caller_plugins, tmp_path, textwrap.dedent("""\
        lxc.prlimit.nofile = 1024:2048
        lxc.prlimit.core = unlimited
        lxc.sysctl.kernel.msgmax = 4096
        lxc.sysctl.net.ipv4.ip_forward = 1
        lxc.proc.oom_score_adj = 10
        lxc.mount.auto = proc:mixed sys:ro
        lxc.mount.auto = sys:rw
        lxc.keyring.session = 0
        lxc.hook.version = 1
        lxc.hook.pre-start = /bin/true one
        lxc.hook.start-host = /bin/true two
        lxc.hook.start-host = /bin/true three
        lxc.cgroup.relative = 1
        lxc.cgroup.dir = plan/here
        """))
    assert plan.part(PrlimitPart) == PrlimitPart((
        Prlimit("lxc.prlimit.core", 4, resource.RLIM_INFINITY, resource.RLIM_INFINITY, f"{config}:3: "),
        Prlimit("lxc.prlimit.nofile", 7, 1024, 2048, f"{config}:2: "),
    ))
    assert plan.part(SysctlPart) == SysctlPart((
        Sysctl("lxc.sysctl.kernel.msgmax", "4096", syscalls.CLONE_NEWIPC, f"{config}:4: "),
        Sysctl("lxc.sysctl.net.ipv4.ip_forward", "1", syscalls.CLONE_NEWNET, f"{config}:5: "),
    ))
    assert [s.path for s in plan.part(SysctlPart).sysctls] == ["sys/kernel/msgmax", "sys/net/ipv4/ip_forward"]
    assert plan.part(ProcPart) == ProcPart((ProcFile("lxc.proc.oom_score_adj", "10", f"{config}:6: "),))
    assert plan.part(SysfsPart) == SysfsPart("rw")  # the later token of the group wins
    assert plan.part(KeyringPart) == KeyringPart(new_session=False)
    assert plan.part(HookPart) == HookPart(
        scripts=(("pre-start", ("/bin/true one",)), ("start-host", ("/bin/true two", "/bin/true three"))),
        version="1", config_path=str(config), rootfs_path="/srv/rootfs", log_level="ERROR")
    assert plan.part(CgroupSettings) == CgroupSettings(relative=True, dir="plan/here")
    request = StartRequest.for_plan(plan, caller_plugins, detach=True)
    back, _plugins = start_request.decode(transfer.parse_json(transfer.dumps(request)))
    assert back.plan.parts == plan.parts


def test_a_config_without_those_keys_plans_no_parts_for_them(tmp_path, caller_plugins):
    plan = _plan(caller_plugins, tmp_path, "")
    assert [plan.part_or_none(cls) for cls in (PrlimitPart, SysctlPart, ProcPart, SysfsPart, HookPart)] == [None] * 5
    assert plan.part(KeyringPart) == KeyringPart(new_session=True)
    assert plan.part(CgroupSettings) == CgroupSettings()


#: Keys the monitor and the child must not read again: the test removes them from the plan's config.
PLANNED_PREFIXES = ("lxc.prlimit.", "lxc.sysctl.", "lxc.proc.", "lxc.hook.", "lxc.cgroup.dir")


def test_a_start_applies_the_parts_with_the_keys_gone_from_the_config(make_container, monkeypatch, tmp_path):
    marker = tmp_path / "hook-ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$LXC_HOOK_TYPE $LXC_HOOK_VERSION $LXC_PID" > {marker}\n')
    hook.chmod(0o755)
    host_msgmax = int(Path("/proc/sys/kernel/msgmax").read_text())
    container = make_container("pp-keys", config=(
        ("lxc.prlimit.nofile", "1000:2000"),
        ("lxc.sysctl.kernel.msgmax", str(host_msgmax - 1)),
        ("lxc.proc.oom_score_adj", "7"),
        ("lxc.hook.version", "1"),
        ("lxc.hook.start-host", str(hook)),
        ("lxc.cgroup.dir", "planned"),
    ))
    # What crosses is the plan with every planned key gone from its config: only the parts say them.
    seen = daemon_plans_without_keys(monkeypatch, PLANNED_PREFIXES)
    rootfs = Path(container.load_config().get("lxc.rootfs.path"))
    os.mkfifo(rootfs / "rc")
    script = "echo $(cat /proc/sys/kernel/msgmax) $(cat /proc/1/oom_score_adj) > /rc; exec sleep 1000"
    container.start(["/bin/sh", "-c", script])
    try:
        assert len(seen) == 1
        pid = container.init_pid
        assert _read_fifo(rootfs / "rc") == f"{host_msgmax - 1} 7\n".encode()
        with open(f"/proc/{pid}/limits") as handle:
            [nofile] = [line.split()[3:5] for line in handle if line.startswith("Max open files")]
        assert nofile == ["1000", "2000"]
        assert marker.read_text() == f"start-host 1 {pid}\n"
        [unified] = [line for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if line.startswith("0::")]
        assert unified.endswith(f"/planned/lxc.payload.{container.name}")
        assert int(Path("/proc/sys/kernel/msgmax").read_text()) == host_msgmax
    finally:
        container.stop(kill=True)
