"""Config keys shown by what they do: hooks, signals, personality, console log limits, resource
limits and namespaced sysctls in real containers; keys refused as LXC's but not applied here; and a
check that every key the registry knows is named by some test under tests/ (the session keyring's
is shown in test_keyring.py)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from lxcframe.config.keys import KeySpec
from lxcframe.container import Container
from lxcframe.errors import ConfigError, ConfigErrors, LxcframeError
from lxcframe.plugin_manager import Plugins

from .conftest import run_cli
from .test_lifecycle import capture

pytestmark = pytest.mark.container

TESTS_DIR = Path(__file__).parent
MACHINE = os.uname().machine


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def rootfs_of(container: Container) -> Path:
    return Path(container.load_config().get("lxc.rootfs.path"))


def append_config(container: Container, text: str) -> None:
    with open(container.config_file_name, "a") as handle:
        handle.write(text)


def line_of(container: Container, key: str) -> int:
    with open(container.config_file_name) as handle:
        for number, line in enumerate(handle, start=1):
            if line.split("=")[0].strip() == key:
                return number
    raise AssertionError(f"{key} not in {container.config_file_name}")


def script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


# --- hooks, and lxc.rootfs.mount (accepted, ignored) --------------------------------------------------------

HOST_HOOK = """#!/bin/sh
out={out}/$LXC_HOOK_TYPE
{{
  echo "args=$*"
  echo "name=$LXC_NAME type=$LXC_HOOK_TYPE section=$LXC_HOOK_SECTION version=$LXC_HOOK_VERSION"
  echo "rootfs=$LXC_ROOTFS_MOUNT path=$LXC_ROOTFS_PATH config=$LXC_CONFIG_FILE target=$LXC_TARGET"
  echo "mntns=$(readlink /proc/self/ns/mnt)"
  case "$LXC_HOOK_TYPE" in
    pre-mount|autodev) test -x "$LXC_ROOTFS_MOUNT/bin/busybox" && echo rootfs-mounted || echo rootfs-absent
                       stat -c 'null=%F' "$LXC_ROOTFS_MOUNT/dev/null" 2>/dev/null || echo null=none ;;
    stop) echo "uts=$(nsenter --uts="$LXC_UTS_NS" hostname)" ;;
    destroy) test -f "$LXC_CONFIG_FILE" && echo config-present ;;
  esac
}} > "$out"
echo "$LXC_HOOK_TYPE" >> {out}/order
"""

START_HOOK = """#!/bin/sh
{ echo "args=$*"; echo "type=$LXC_HOOK_TYPE host=$(hostname)"; readlink /proc/self/ns/mnt; } > /start-hook.out
"""


def test_hooks_run_at_their_points_with_the_documented_environment(make_container, tmp_path):
    out = tmp_path / "hooks"
    out.mkdir()
    hook = script(tmp_path / "hook.sh", HOST_HOOK.format(out=out))
    ignored_mount = tmp_path / "rootfs-mount-is-ignored"
    container = make_container("hookbox", config=(
        ("lxc.hook.pre-mount", hook),
        ("lxc.hook.autodev", hook),
        ("lxc.hook.start", "/start-hook.sh"),  # runs inside, after pivot_root: a path of the rootfs
        ("lxc.hook.stop", hook),
        ("lxc.hook.post-stop", hook),
        ("lxc.hook.destroy", hook),
        ("lxc.hook.clone", hook),  # accepted (Debian's stock configs set it); lxcframe never clones
        ("lxc.rootfs.mount", str(ignored_mount)),  # accepted and ignored
    ))
    rootfs = rootfs_of(container)
    script(rootfs / "start-hook.sh", START_HOOK)
    host_mntns = os.readlink("/proc/self/ns/mnt")

    # The payload sees what the start hook left: it ran inside, before init.
    code, seen = capture(container, "/bin/sh", "-c", "cat /start-hook.out", execute=True)
    assert code == 0, seen
    start_args, start_type, start_mntns = seen.splitlines()
    assert start_args == "args=hookbox lxc start"
    assert start_type == "type=start host=hookbox"
    assert start_mntns != host_mntns

    order = (out / "order").read_text().split()
    assert order == ["pre-mount", "autodev", "stop", "post-stop"]
    records = {kind: (out / kind).read_text().splitlines() for kind in order}
    for kind, lines in records.items():
        assert lines[0].startswith(f"args=hookbox lxc {kind}"), (kind, lines)
        assert lines[1] == f"name=hookbox type={kind} section=lxc version=0"
        # lxc.rootfs.mount changes nothing: the rootfs is mounted on lxcframe's own directory.
        assert lines[2].startswith(f"rootfs=/run/lxcframe.rootfs path={rootfs} "
                                   f"config={container.config_file_name} target="), lines[2]
    # pre-mount: in the container's mount namespace, before the rootfs is mounted.
    assert records["pre-mount"][3] != f"mntns={host_mntns}"
    assert records["pre-mount"][4:] == ["rootfs-absent", "null=none"]
    # autodev: the rootfs is mounted and /dev populated, not yet pivoted into.
    assert records["autodev"][3] == records["pre-mount"][3]
    assert records["autodev"][4:] == ["rootfs-mounted", "null=character special file"]
    # stop: on the host, after init ended, with the container's namespaces still reachable.
    assert records["stop"][3] == f"mntns={host_mntns}"
    assert records["stop"][2].endswith("target=stop")
    assert records["stop"][4] == "uts=hookbox"
    assert re.search(r" uts:/proc/\d+/fd/\d+", records["stop"][0]), records["stop"][0]
    assert records["post-stop"][2].endswith("target=stop")
    assert records["post-stop"][3] == f"mntns={host_mntns}"

    container.destroy()
    assert (out / "order").read_text().split() == ["pre-mount", "autodev", "stop", "post-stop", "destroy"]
    destroy = (out / "destroy").read_text().splitlines()
    assert destroy[0] == "args=hookbox lxc destroy"
    assert destroy[-1] == "config-present", "destroy hooks run before the files are removed"
    assert not (out / "clone").exists(), "no operation runs clone hooks"
    assert not ignored_mount.exists()


# --- lxc.signal.stop (and lxc.signal.halt before it) ---------------------------------------------------------

TRAP_INIT = """#!/bin/sh
trap 'echo halt-USR1 >> /signals' USR1
trap 'echo stop-USR2 >> /signals; exit 0' USR2
sleep 2147483647 &
echo ready > /ready
while :; do wait; done
"""


def test_signal_stop_is_what_a_stop_escalates_to(make_container):
    container = make_container("sigstop", config=(
        ("lxc.init.cmd", "/bin/sh /trap-init.sh"),
        ("lxc.signal.halt", "SIGUSR1"),
        ("lxc.signal.stop", "SIGUSR2"),
    ))
    rootfs = rootfs_of(container)
    script(rootfs / "trap-init.sh", TRAP_INIT)
    container.start()
    assert wait_for((rootfs / "ready").exists)
    # init traps the halt signal and stays: after the timeout the stop signal goes to every process.
    container.stop(timeout=0.5)
    assert container.state == "STOPPED"
    assert (rootfs / "signals").read_text().split() == ["halt-USR1", "stop-USR2"]


def test_signal_stop_with_kill_skips_the_halt(make_container):
    container = make_container("sigkill", config=(
        ("lxc.init.cmd", "/bin/sh /trap-init.sh"),
        ("lxc.signal.stop", str(int(signal.SIGUSR2))),  # a number works as well as a name
    ))
    rootfs = rootfs_of(container)
    script(rootfs / "trap-init.sh", TRAP_INIT)
    container.start()
    assert wait_for((rootfs / "ready").exists)
    container.stop(kill=True)
    assert (rootfs / "signals").read_text().split() == ["stop-USR2"]


# --- lxc.arch ------------------------------------------------------------------------------------------------

#: The 32-bit machine ``uname -m`` names under PER_LINUX32 on this host.
COMPAT = {"x86_64": "i686", "aarch64": "armv8l"}[MACHINE]
NATIVE_NAMES = {"x86_64": ("x86_64", "amd64"), "aarch64": ("aarch64", "arm64")}[MACHINE]
COMPAT_NAMES = {"x86_64": ("i686", "x86"), "aarch64": ()}[MACHINE]
FOREIGN_NAMES = {"x86_64": ("aarch64", "arm64"), "aarch64": ("x86_64", "amd64", "i686", "x86")}[MACHINE]


@pytest.mark.parametrize("arch", ["x86_64", "amd64", "i686", "x86", "aarch64", "arm64", "linux64", "linux32"])
def test_arch_sets_the_personality_of_the_payload(make_container, arch):
    container = make_container("arch", config=(("lxc.arch", arch),))
    if arch in FOREIGN_NAMES:
        with pytest.raises(ConfigError) as info:
            container.execute(["/bin/true"])
        where = f"{container.config_file_name}:{line_of(container, 'lxc.arch')}: "
        assert str(info.value) == (f"{where}lxc.arch = {arch}: this host ({MACHINE}) cannot run {arch}: only its "
                                   "own architecture or its 32-bit personality (linux32)")
        assert container.state == "STOPPED"
        return
    bits32 = arch == "linux32" or arch in COMPAT_NAMES
    assert bits32 or arch == "linux64" or arch in NATIVE_NAMES
    code, out = capture(container, "/bin/sh", "-c", "uname -m; cat /proc/1/personality /proc/self/personality",
                        execute=True)
    assert code == 0, out
    expected = [COMPAT, "00000008", "00000008"] if bits32 else [MACHINE, "00000000", "00000000"]
    assert out.split() == expected


def test_arch_holds_for_init_and_attached_commands(make_container):
    container = make_container("arch32", config=(("lxc.arch", "linux32"),))
    init = container.start()
    try:
        with open(f"/proc/{init}/personality") as handle:
            assert handle.read().strip() == "00000008"
        code, out = capture(container, "/bin/sh", "-c", "uname -m; cat /proc/self/personality")
        assert code == 0, out
        assert out.split() == [COMPAT, "00000008"]
    finally:
        container.stop(kill=True)
    with open("/proc/self/personality") as handle:
        assert handle.read().strip() == "00000000", "the caller keeps its own personality"


# --- lxc.console.size and lxc.console.rotate ------------------------------------------------------------------

#: 600 numbered lines, then a last one: 14 kB, more than three times the limit.
CONSOLE_TEXT = "".join(f"line-{i:03d}-xxxxxxxxxxxx\n" for i in range(600)) + "console-done\n"


@pytest.mark.parametrize(("size", "rotate"), [("4kB", "1"), ("1", "0")])
def test_console_log_is_limited_and_rotated(make_container, tmp_path, size, rotate):
    logfile = tmp_path / "console.log"
    container = make_container("conlog", config=(
        ("lxc.console.logfile", str(logfile)),
        ("lxc.console.size", size),  # 4 KiB; anything non-zero is at least a page (4096 bytes)
        ("lxc.console.rotate", rotate),
    ))
    rootfs = rootfs_of(container)
    (rootfs / "console.txt").write_text(CONSOLE_TEXT)
    (rootfs / "etc/inittab").write_text("::sysinit:/bin/cat /console.txt\n::respawn:/bin/sleep 2147483647\n")
    container.start()
    try:
        assert wait_for(lambda: logfile.exists() and logfile.read_bytes().endswith(b"console-done\r\n"))
    finally:
        container.stop(kill=True)
    written = CONSOLE_TEXT.replace("\n", "\r\n")  # the terminal's onlcr
    text = logfile.read_bytes().decode()
    assert 0 < len(text.encode()) <= 4096
    assert written.endswith(text), "the newest output, whole, is kept"
    rotated = Path(f"{logfile}.1")
    if rotate == "1":
        older = rotated.read_bytes().decode()
        assert 0 < len(older.encode()) <= 4096
        # Earlier output than the current file's, and not the earliest: it was rotated more than once.
        start = written.index(older)
        assert start > 0 and start + len(older) <= len(written) - len(text)
    else:
        assert not rotated.exists()


# --- lxc.prlimit.* --------------------------------------------------------------------------------------------

LIMIT_ROWS = {
    "lxc.prlimit.as": "Max address space", "lxc.prlimit.data": "Max data size",
    "lxc.prlimit.fsize": "Max file size", "lxc.prlimit.locks": "Max file locks",
    "lxc.prlimit.memlock": "Max locked memory", "lxc.prlimit.msgqueue": "Max msgqueue size",
    "lxc.prlimit.rss": "Max resident set", "lxc.prlimit.sigpending": "Max pending signals",
    "lxc.prlimit.nice": "Max nice priority", "lxc.prlimit.rtprio": "Max realtime priority",
}


def parse_limits(text: str) -> dict[str, tuple[str, str]]:
    """/proc/PID/limits rows by name: (soft, hard). Columns are fixed width (nice has no unit)."""
    rows = {}
    for line in text.splitlines()[1:]:
        rows[line[:26].strip()] = (line[26:47].strip(), line[47:68].strip())
    return rows


def _number(text: str) -> int:
    return 2**64 - 1 if text == "unlimited" else int(text)


def test_prlimit_resources_are_set_on_the_payload(make_container):
    ours = parse_limits(Path("/proc/self/limits").read_text())
    wanted = {
        "lxc.prlimit.as": (3 << 30, 4 << 30), "lxc.prlimit.data": (1 << 30, 2 << 30),
        "lxc.prlimit.fsize": (1 << 20, 2 << 20), "lxc.prlimit.locks": (64, 128),
        "lxc.prlimit.memlock": (65536, 131072), "lxc.prlimit.msgqueue": (204800, 409600),
        "lxc.prlimit.rss": (123456789, 223456789), "lxc.prlimit.sigpending": (1000, 2000),
    }
    limits = {}
    for key, (soft, hard) in wanted.items():
        # Never above our own hard limit: raising one needs CAP_SYS_RESOURCE, which root may lack.
        hard = min(hard, _number(ours[LIMIT_ROWS[key]][1]))
        limits[key] = (min(soft, hard), hard)
    container = make_container("limits", config=tuple((key, f"{soft}:{hard}") for key, (soft, hard) in limits.items()))
    code, out = capture(container, "/bin/sh", "-c",
                        "cat /proc/self/limits; echo ---; dd if=/dev/zero of=/big bs=4096 count=512 2>/dev/null; "
                        "echo status=$?; stat -c size=%s /big; rm /big", execute=True)
    assert code == 0, out
    table, behaviour = out.split("---\n")
    rows = parse_limits(table)
    assert {key: rows[LIMIT_ROWS[key]] for key in limits} == {
        key: (str(soft), str(hard)) for key, (soft, hard) in limits.items()}
    # RLIMIT_FSIZE in action: the write past the soft limit is stopped by SIGXFSZ.
    fsize = limits["lxc.prlimit.fsize"][0]
    assert behaviour.split() == [f"status={128 + signal.SIGXFSZ}", f"size={fsize}"]


def _has_cap_sys_resource() -> bool:
    status = Path("/proc/self/status").read_text()
    return bool(int(status.split("CapEff:")[1].split()[0], 16) & (1 << 24))


@pytest.mark.parametrize("key", ["lxc.prlimit.nice", "lxc.prlimit.rtprio"])
def test_prlimit_nice_and_rtprio(make_container, key):
    # Both are 0 for most callers, and raising a hard limit needs CAP_SYS_RESOURCE: with it the limit
    # holds inside, without it the kernel's refusal fails the start, naming the line.
    container = make_container("nice", config=((key, "7:9"),))
    if _has_cap_sys_resource():
        code, out = capture(container, "/bin/cat", "/proc/self/limits", execute=True)
        assert code == 0, out
        assert parse_limits(out)[LIMIT_ROWS[key]] == ("7", "9")
        return
    with pytest.raises(LxcframeError) as info:
        container.execute(["/bin/true"])
    text = str(info.value)
    assert f"{container.config_file_name}:{line_of(container, key)}: {key} = 7:9: the kernel refused it" in text
    assert container.state == "STOPPED"


# --- lxc.sysctl.* of the IPC and UTS namespaces ---------------------------------------------------------------

SYSCTLS = {
    "lxc.sysctl.kernel.hostname": ("kernel/hostname", "from-sysctl"),
    "lxc.sysctl.kernel.domainname": ("kernel/domainname", "example.test"),
    "lxc.sysctl.kernel.msgmnb": ("kernel/msgmnb", "12345"),
    "lxc.sysctl.kernel.msgmni": ("kernel/msgmni", "321"),
    "lxc.sysctl.kernel.msg_next_id": ("kernel/msg_next_id", "4242"),
    "lxc.sysctl.kernel.sem": ("kernel/sem", "250 32000 32 129"),
    "lxc.sysctl.kernel.sem_next_id": ("kernel/sem_next_id", "4343"),
    "lxc.sysctl.kernel.shmall": ("kernel/shmall", "1048576"),
    "lxc.sysctl.kernel.shmmax": ("kernel/shmmax", "33554432"),
    "lxc.sysctl.kernel.shmmni": ("kernel/shmmni", "1234"),
    "lxc.sysctl.kernel.shm_next_id": ("kernel/shm_next_id", "4444"),
    "lxc.sysctl.kernel.shm_rmid_forced": ("kernel/shm_rmid_forced", "1"),
    "lxc.sysctl.fs.mqueue.msg_max": ("fs/mqueue/msg_max", "42"),
    "lxc.sysctl.fs.mqueue.queues_max": ("fs/mqueue/queues_max", "77"),
}


def _sysctl(path: str) -> str:
    return " ".join(Path("/proc/sys", path).read_text().split())


def test_ipc_and_uts_sysctls_are_the_containers_own(make_container):
    host_before = {path: _sysctl(path) for path, _ in SYSCTLS.values()}
    for path, value in SYSCTLS.values():
        assert host_before[path] != value, f"pick a value the host does not have for {path}"
    container = make_container("sysctls", config=tuple((key, value) for key, (_, value) in SYSCTLS.items()))
    paths = [path for path, _ in SYSCTLS.values()]
    command = "hostname; " + "; ".join(f"echo $(cat /proc/sys/{path})" for path in paths)
    code, out = capture(container, "/bin/sh", "-c", command, execute=True)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "from-sysctl", "kernel.hostname is written after lxc.uts.name"
    assert dict(zip(paths, lines[1:], strict=True)) == {path: value for path, value in SYSCTLS.values()}
    assert {path: _sysctl(path) for path in paths} == host_before


# --- keys refused before anything starts ----------------------------------------------------------------------

NET_UNSUPPORTED = (
    "lxc.net.0.veth.vlan.id", "lxc.net.0.veth.vlan.tagged.id", "lxc.net.0.veth.n_rxqueues",
    "lxc.net.0.veth.n_txqueues",
)


def test_lxc_network_keys_not_implemented_are_refused_with_their_lines(make_container):
    container = make_container("netkeys")
    append_config(container, "lxc.net.0.type = veth\n" + "".join(f"{key} = 1\n" for key in NET_UNSUPPORTED))
    with pytest.raises(ConfigErrors) as info:
        container.start()
    path = container.config_file_name
    assert [str(err) for err in info.value.errors] == [
        f"{path}:{line_of(container, key)}: {key} = '1': this LXC network key is not supported by lxcframe"
        for key in NET_UNSUPPORTED
    ]
    assert container.state == "STOPPED"


#: LXC's keys no lxcframe plugin handles yet (docs/features.md), each with a value LXC would take.
LXC_ONLY = (
    ("lxc.cgroup", ""),
    ("lxc.cgroup2", ""),
    ("lxc.hook", ""),
    ("lxc.prlimit", ""),
    ("lxc.proc", ""),
    ("lxc.sysctl", ""),
    ("lxc.selinux.context", "system_u:system_r:lxc_t:s0"),
    ("lxc.selinux.context.keyring", "system_u:system_r:lxc_t:s0"),
    ("lxc.seccomp.notify.cookie", "cookie"),
    ("lxc.seccomp.notify.proxy", "unix:/run/proxy"),
    ("lxc.monitor.unshare", "1"),
)
NOT_YET = "an LXC key lxcframe does not support yet (see docs/features.md)"


def test_lxc_keys_no_plugin_applies_stop_the_start(make_container):
    container = make_container("lxconly")
    append_config(container, "".join(f"{key} = {value}\n" for key, value in LXC_ONLY))
    with pytest.raises(ConfigErrors) as info:
        container.start()
    path = container.config_file_name
    host_config = os.environ["LXCFRAME_HOST_CONFIG"]
    assert [str(err) for err in info.value.errors] == [
        f"{path}:{line_of(container, key)}: {key}: {NOT_YET}: the container "
        f'would run without it (to start it anyway: unhandled_keys = "warn" in [plugins] of {host_config})'
        for key, _ in LXC_ONLY
    ]
    assert container.state == "STOPPED"


def test_lxc_keys_no_plugin_applies_are_warnings_when_the_host_opts_out(make_container, lxcpath):
    container = make_container("lxcwarn")
    append_config(container, "".join(f"{key} = {value}\n" for key, value in LXC_ONLY))
    with open(os.environ["LXCFRAME_HOST_CONFIG"], "a") as handle:
        handle.write('[plugins]\nunhandled_keys = "warn"\n')
    result = run_cli("-P", lxcpath, "execute", "lxcwarn", "--", "/bin/hostname")
    assert (result.returncode, result.stdout) == (0, "lxcwarn\n"), result.stderr
    warned = [line for line in result.stderr.splitlines() if "WARN" in line]
    path = container.config_file_name
    assert len(warned) == len(LXC_ONLY), result.stderr
    for line, (key, _) in zip(warned, LXC_ONLY, strict=True):
        assert "config key not handled" in line
        assert f"{path}:{line_of(container, key)}: {key}: {NOT_YET}" in line


# --- every key the registry knows is named by a test -----------------------------------------------------------

KEY_TOKEN = re.compile(r"lxc\.[A-Za-z0-9_.<>*-]+")


def _known_keys(registry) -> list[str]:
    """Every key and pattern: those enabled plugins declare, then those it knows but no plugin applies."""
    return [spec.name for spec in registry.specs()] + [name for name, _, _ in registry.inactive()]


def _named_by(token: str, registry, inactive: list[str]) -> str | None:
    """The registry entry a key written in a test stands for: the key itself, else the pattern that
    takes it (the most specific, as lookups do)."""
    spec = registry.lookup(token)
    if spec is not None:
        return spec.name
    matching = [name for name in inactive if KeySpec(name).matches(token)]
    return max(matching, key=len) if matching else None


def test_every_known_key_is_named_by_a_test():
    registry = Plugins(environ={}).key_registry()
    known = _known_keys(registry)
    assert len(known) > 100, known  # the registry, not a stub
    inactive = [name for name, _, _ in registry.inactive()]
    named: dict[str, set[str]] = {}
    for path in sorted(TESTS_DIR.rglob("*.py")):
        for token in KEY_TOKEN.findall(path.read_text()):
            token = token.rstrip(".")
            # A pattern written as such (lxc.cgroup2.*) names itself.
            entry = token if token in known else _named_by(token, registry, inactive)
            if entry is not None:
                named.setdefault(entry, set()).add(str(path.relative_to(TESTS_DIR)))
    unnamed = [key for key in known if key not in named]
    assert not unnamed, f"config keys no test under tests/ names: {unnamed}"
