"""Every process that enters a container holds only what it must, and none that a container can see
maps a host file it could write (runc CVE-2019-5736 and CVE-2024-21626 classes).

Each test plays the container's root: it looks at pid 1 and every process it can see, tries to
write host files through their descriptors, ``/proc/PID/exe`` and ``/proc/PID/map_files``, and
checks on the host that nothing got through.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from lxcframe import entering, syscalls
from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import ContainerError, LxcframeError

from ..conftest import compile_static
from ..test_lifecycle import capture

pytestmark = pytest.mark.container

ROOT_MAP = (("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536"))

#: Loops over every other process it can see until /racer.stop exists. For each it records, in
#: /racer.out: mappings of a Python runtime ("PY pid path") and every /proc/PID/map_files entry or
#: /proc/PID/exe it could open for writing ("W pid link dev:ino"). Opening is enough to prove the
#: point; it never writes.
RACER_SOURCE = r"""
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static FILE *out;
static int lines;

static void record(const char *kind, const char *pid, const char *what, int fd) {
    struct stat st;
    if (lines++ > 2000) return;
    if (fd >= 0 && fstat(fd, &st) == 0)
        fprintf(out, "%s %s %s %lu:%lu\n", kind, pid, what, (unsigned long)st.st_dev, (unsigned long)st.st_ino);
    else
        fprintf(out, "%s %s %s\n", kind, pid, what);
    fflush(out);
}

static void try_write(const char *pid, const char *link) {
    int fd = open(link, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0) { record("W", pid, link, fd); close(fd); }
}

static void look_at(const char *pid) {
    char path[512], line[1024];
    snprintf(path, sizeof path, "/proc/%s/maps", pid);
    FILE *maps = fopen(path, "re");
    if (maps) {
        while (fgets(line, sizeof line, maps))
            if (strstr(line, "python") || strstr(line, "libcrypto")) {
                line[strcspn(line, "\n")] = 0;
                record("PY", pid, line, -1);
            }
        fclose(maps);
    }
    snprintf(path, sizeof path, "/proc/%s/exe", pid);
    try_write(pid, path);
    snprintf(path, sizeof path, "/proc/%s/map_files", pid);
    DIR *files = opendir(path);
    if (!files) return;
    struct dirent *entry;
    while ((entry = readdir(files))) {
        if (entry->d_name[0] == '.') continue;
        char link[600];
        snprintf(link, sizeof link, "%s/%s", path, entry->d_name);
        try_write(pid, link);
    }
    closedir(files);
}

int main(void) {
    char self[32];
    snprintf(self, sizeof self, "%d", getpid());
    out = fopen("/racer.out", "ae");
    if (!out) return 2;
    fprintf(out, "started\n");
    fflush(out);
    while (access("/racer.stop", F_OK) != 0) {
        DIR *proc = opendir("/proc");
        if (!proc) return 3;
        struct dirent *entry;
        while ((entry = readdir(proc)))
            if (entry->d_name[0] >= '1' && entry->d_name[0] <= '9' && strcmp(entry->d_name, self) != 0)
                look_at(entry->d_name);
        closedir(proc);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def racer(tmp_path_factory) -> str:
    return compile_static(tmp_path_factory.mktemp("racer"), "racer", RACER_SOURCE)


def _rootfs(container: Container) -> str:
    return str(container.load_config().get("lxc.rootfs.path"))


def _rootfs_files(rootfs: str) -> set[tuple[int, int]]:
    found = set()
    for directory, _, files in os.walk(rootfs):
        for name in files:
            info = os.lstat(os.path.join(directory, name))
            found.add((info.st_dev, info.st_ino))
    return found


def _host_findings(rootfs: str) -> list[str]:
    """What the racer saw that belongs to the host: a Python runtime, or a writable non-container file."""
    with open(os.path.join(rootfs, "racer.out")) as handle:
        lines = handle.read().splitlines()
    assert lines and lines[0] == "started", "the racer never ran"
    inside = _rootfs_files(rootfs)
    bad = []
    for line in lines:
        words = line.split()
        if words[0] == "PY":
            bad.append(line)
        elif words[0] == "W":
            dev, ino = (int(x) for x in words[-1].split(":"))
            if (dev, ino) not in inside:
                bad.append(line)
    return bad


def _install(rootfs: str, racer: str) -> None:
    shutil.copy2(racer, os.path.join(rootfs, "bin", "racer"))


@pytest.mark.parametrize("config", [(), ROOT_MAP], ids=["privileged", "unprivileged"])
def test_attach_shows_the_container_no_process_mapping_a_writable_host_file(make_container, racer, config):
    container = make_container("race-at", config=config)
    rootfs = _rootfs(container)
    _install(rootfs, racer)
    container.start()
    try:
        assert container.attach_wait(["/bin/sh", "-c", "/bin/racer </dev/null >/dev/null 2>&1 &"]) == 0
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(rootfs, "racer.out")) and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(50):
            assert container.attach_wait(["/bin/true"]) == 0
        open(os.path.join(rootfs, "racer.stop"), "w").close()
        findings = _host_findings(rootfs)
    finally:
        container.stop(kill=True)
    assert not findings, f"the container reached host files: {findings[:5]}"


@pytest.mark.parametrize("config", [(), ROOT_MAP], ids=["privileged", "unprivileged"])
def test_execute_shows_the_container_no_process_mapping_a_writable_host_file(make_container, racer, config):
    container = make_container("race-ex", config=config)
    rootfs = _rootfs(container)
    _install(rootfs, racer)
    for _ in range(20):
        command = "/bin/racer & sleep 0.05; touch /racer.stop; wait; rm /racer.stop"
        assert container.execute(["/bin/sh", "-c", command]) == 0
    with open(os.path.join(rootfs, "racer.out")) as handle:
        assert handle.read().count("started") == 20
    findings = _host_findings(rootfs)
    assert not findings, f"the container reached host files: {findings[:5]}"


def test_execute_pid1_holds_only_stdio_and_nothing_of_the_caller(make_container, tmp_path, monkeypatch):
    """pid 1 of ``execute`` is a real init: no host descriptor to walk out through, no host environment."""
    monkeypatch.setenv("LXCFRAME_CALLER_SECRET", "s3cr3t-of-the-caller")
    container = make_container("pid1")
    marker = tmp_path / "written-through-pid1"
    escape = "../" * 40 + str(marker).lstrip("/")
    attack = (
        "ls /proc/1/fd | tr '\\n' ' '; echo; readlink /proc/1/exe; tr '\\0' '\\n' < /proc/1/environ; "
        "tr '\\0' ' ' < /proc/1/cmdline; echo; "
        f"for fd in /proc/1/fd/*; do echo pwned > \"$fd/{escape}\"; done 2>/dev/null; true"
    )
    code, out = capture(container, "/bin/sh", "-c", attack, execute=True)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["0", "1", "2"], f"pid 1 holds more than stdio: {lines[0]}"
    assert "memfd:" in lines[1], f"pid 1 runs a host file: {lines[1]}"
    assert "s3cr3t-of-the-caller" not in out
    assert not marker.exists(), "a host file was written through a descriptor of pid 1"


def test_attach_closes_the_callers_descriptors_unless_passed(make_container, tmp_path):
    container = make_container("fds")
    marker = tmp_path / "written-through-attach"
    host_dir = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(host_dir, True)
    container.start()
    try:
        attack = f'ls /proc/self/fd; echo pwned > /proc/self/fd/{host_dir}/{marker.name}'
        code, out = capture(container, "/bin/sh", "-c", attack)
        assert code != 0
        assert str(host_dir) not in out.split()
        assert not marker.exists()
        # Passed on purpose, the same descriptor is there under its number.
        rootfs = _rootfs(container)
        assert container.attach_wait(["/bin/sh", "-c", f"ls /proc/self/fd > /.fds; readlink /proc/self/fd/{host_dir}"],
                                     pass_fds=(host_dir,)) == 0
        with open(os.path.join(rootfs, ".fds")) as handle:
            assert str(host_dir) in handle.read().split()
    finally:
        os.close(host_dir)
        container.stop(kill=True)


def _forged_notice_init(rootfs: str) -> None:
    """An init that writes a forged "running as pid 1" notice into every descriptor it may hold.

    (Descriptors from 10 up are the shell's own: busybox sh keeps its script and saved stdio there.)
    """
    script = os.path.join(rootfs, "sbin", "evil-init")
    with open(script, "w") as handle:
        handle.write('#!/bin/sh\nfor fd in 3 4 5 6 7 8 9; do\n'
                     '  if echo \'{"ok": true, "init_pid": 1}\' >&$fd; then echo $fd >> /init.wrote; fi\n'
                     'done 2>/dev/null\ntouch /init.done\nexec /sbin/init\n')
    os.chmod(script, 0o755)


@pytest.mark.parametrize("supervisor", ["1", "0"], ids=["supervisor", "forked"])
def test_init_cannot_answer_for_the_monitor(make_container, monkeypatch, supervisor):
    """The caller's notify pipe never reaches init: a forged "running, pid 1" cannot be sent."""
    monkeypatch.setenv("LXCFRAME_SUPERVISOR", supervisor)
    container = make_container("notice", config=(("lxc.init.cmd", "/sbin/evil-init"),))
    rootfs = _rootfs(container)
    _forged_notice_init(rootfs)
    pid = container.start()
    try:
        assert pid != 1
        assert pid == container.current_state().init_pid
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(rootfs, "init.done")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.exists(os.path.join(rootfs, "init.done"))
        assert not os.path.exists(os.path.join(rootfs, "init.wrote")), "init could write to a host descriptor"
    finally:
        container.stop(kill=True)


def test_init_cwd_through_a_descriptor_cannot_leave_the_root(make_container):
    """``lxc.init.cwd = /proc/self/fd/N`` for every N a runtime process might hold."""
    container = make_container("cwd")
    for fd in range(3, 64):
        container.set_config_item("lxc.init.cwd", f"/proc/self/fd/{fd}")
        with pytest.raises(LxcframeError, match=r"lxc\.init\.cwd"):
            container.execute(["/bin/sh", "-c", "pwd > /leaked"])
        assert not os.path.exists(os.path.join(_rootfs(container), "leaked")), f"fd {fd}: init ran outside the root"


def test_a_working_directory_outside_the_root_is_refused(tmp_path):
    """The check itself: a directory reached through a descriptor from a chroot has no path in it."""
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(str(outside), os.O_RDONLY | os.O_DIRECTORY)
            syscalls.unshare(syscalls.CLONE_NEWNS)
            syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
            syscalls.mount("/proc", str(root / "proc"), None, syscalls.MS_BIND)
            os.chroot(str(root))
            try:
                entering.enter_cwd(f"/proc/self/fd/{fd}")
            except entering.OutsideRoot:
                code = 0
            entering.enter_cwd("/proc")  # and a directory inside is fine
        except BaseException:
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_no_signal_ignored_or_blocked_in_what_runs_inside(make_container):
    """Python ignores SIGPIPE and SIGXFSZ; nothing started in a container inherits that."""
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # the test process is the caller
    container = make_container("sigs")
    probe = "grep -E '^Sig(Ign|Blk)' /proc/self/status; yes | head -1 >/dev/null"
    code, out = capture(container, "/bin/sh", "-c", f"exec 2>&1; {probe}", execute=True)
    assert code == 0
    assert "SigIgn:\t0000000000000000" in out and "SigBlk:\t0000000000000000" in out, out
    assert "Broken pipe" not in out
    container.start()
    try:
        code, out = capture(container, "/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status")
        assert sorted(out.split()) == ["0000000000000000", "0000000000000000", "SigBlk:", "SigIgn:"]
        code, out = capture(container, "/bin/sh", "-c", "yes | head -1")
        assert out == "y\n"
    finally:
        container.stop(kill=True)


#: What a program sees of its own dispositions, run three ways: executed directly, as the last (and only)
#: command of ``sh -c``, and through ``sh -c 'exec …'``.
_STATUS = "grep SigIgn /proc/self/status"
SHELL_FORMS = {"direct": ["grep", "SigIgn", "/proc/self/status"], "sh -c": ["sh", "-c", _STATUS],
               "sh -c exec": ["sh", "-c", f"exec {_STATUS}"]}
#: Runs its arguments with every signal default: the host's control, a parent that ignores nothing.
_CLEAN_PARENT = ("import os, signal, sys\n"
                 "for signum in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}: "
                 "signal.signal(signum, signal.SIG_DFL)\n"
                 "os.execv(sys.argv[1], sys.argv[1:])\n")


def test_what_runs_inside_holds_what_it_would_hold_on_the_host(make_container, caller_ignores_sigquit):
    """Busybox's ``sh -c 'CMD'`` ignores SIGQUIT itself and executes its last command without a fork,
    without restoring it (SigIgn 0000000000000004, under runc as under lxcframe; ``exec CMD`` or a
    second command restores it): the runtime adds nothing to what the image's programs do themselves,
    whatever the caller ignores, and a program it executes directly has every signal default."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    on_host = {form: subprocess.run([sys.executable, "-c", _CLEAN_PARENT, busybox, *argv], capture_output=True,
                                    text=True, timeout=60, check=True).stdout.split()
               for form, argv in SHELL_FORMS.items()}
    assert on_host["direct"] == ["SigIgn:", "0000000000000000"]
    container = make_container("sigsh")

    def inside(execute: bool) -> dict[str, tuple[int, list[str]]]:
        ran = {form: capture(container, f"/bin/{argv[0]}", *argv[1:], execute=execute)
               for form, argv in SHELL_FORMS.items()}
        return {form: (code, out.split()) for form, (code, out) in ran.items()}

    expected = {form: (0, seen) for form, seen in on_host.items()}
    assert inside(execute=True) == expected
    container.start()
    try:
        assert inside(execute=False) == expected
    finally:
        container.stop(kill=True)


@pytest.fixture
def caller_ignores_sigquit():
    """The caller ignores SIGINT and SIGQUIT, as a non-interactive shell's background job does."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGQUIT)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("mode", ["execute", "start"])
def test_hooks_inherit_no_ignored_signal_of_the_caller(make_container, caller_ignores_sigquit, tmp_path, mode):
    """The start hook runs inside the container; the pre-start hook on the host, from the monitor
    (a supervisor's monitor for a daemon start): neither inherits what the caller ignored."""
    probe = tmp_path / "pre-start"
    probe.write_text(f"#!/bin/sh\ngrep SigIgn /proc/self/status > {tmp_path}/pre-start.out\ntrue\n")
    probe.chmod(0o755)
    container = make_container("hooksig", config=(("lxc.hook.pre-start", str(probe)),
                                                  ("lxc.hook.start", "/bin/start-probe")))
    rootfs = _rootfs(container)
    inside = os.path.join(rootfs, "bin", "start-probe")
    with open(inside, "w") as handle:
        handle.write("#!/bin/sh\ngrep SigIgn /proc/self/status > /start.out\ntrue\n")
    os.chmod(inside, 0o755)
    if mode == "execute":
        assert container.execute(["/bin/true"]) == 0
    else:
        container.start()
        container.stop(kill=True)
    with open(os.path.join(rootfs, "start.out")) as handle:
        assert handle.read().split() == ["SigIgn:", "0000000000000000"], "the start hook inside"
    if mode == "start":  # execute's monitor is the caller itself: its host hooks are the caller's own
        assert (tmp_path / "pre-start.out").read_text().split() == ["SigIgn:", "0000000000000000"]


#: Reads its own /proc/self/status and writes the SigIgn, SigBlk and SigCgt lines to "<argv[0]>.out"
#: (a hook's arguments are fixed, so the name it runs under says where): what an executed program
#: itself holds, with no shell of the test in between.
SIGPROBE_SOURCE = r"""
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    char line[256], path[4096];
    (void)argc;
    snprintf(path, sizeof path, "%s.out", argv[0]);
    FILE *status = fopen("/proc/self/status", "re");
    FILE *out = fopen(path, "we");
    if (!status || !out) return 2;
    while (fgets(line, sizeof line, status))
        if (!strncmp(line, "SigIgn:", 7) || !strncmp(line, "SigBlk:", 7) || !strncmp(line, "SigCgt:", 7))
            fputs(line, out);
    return fclose(out) == 0 ? 0 : 3;
}
"""

CALLER_IGNORES = (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGXFSZ)
CALLER_BLOCKS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM, signal.SIGWINCH)
#: A caller as a shell's background job is, in Python: SIGINT and SIGQUIT ignored besides Python's
#: own SIGPIPE and SIGXFSZ, some signals blocked; then it executes its arguments, which inherit both
#: across the exec.
CALLER = (
    "import os, signal, sys\n"
    f"for signum in {tuple(int(s) for s in CALLER_IGNORES)}: signal.signal(signum, signal.SIG_IGN)\n"
    f"signal.pthread_sigmask(signal.SIG_BLOCK, {tuple(int(s) for s in CALLER_BLOCKS)})\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)
DEFAULT_SIGNALS = {"SigIgn": 0, "SigBlk": 0, "SigCgt": 0}


def _mask(signals: tuple[signal.Signals, ...]) -> int:
    return sum(1 << (signum - 1) for signum in signals)


@pytest.fixture(scope="module")
def sigprobe(tmp_path_factory) -> str:
    return compile_static(tmp_path_factory.mktemp("sigprobe"), "sigprobe", SIGPROBE_SOURCE)


def _install_probe(sigprobe: str, path: str) -> str:
    shutil.copy2(sigprobe, path)
    return path


def _probed(path: str) -> dict[str, int]:
    """What the probe run as ``path`` wrote: its three masks by name."""
    with open(f"{path}.out") as handle:
        fields = [line.split(":") for line in handle.read().splitlines()]
    return {name: int(value, 16) for name, value in fields}


def _as_caller(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CALLER, *argv], capture_output=True, text=True, timeout=120,
                          check=False)


def _cli_as_caller(lxcpath: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _as_caller(sys.executable, "-m", "lxcframe", "-P", lxcpath, *args)


def test_the_callers_dispositions_reach_what_it_executes(sigprobe, tmp_path):
    """Without a reset on the way, what the caller ignores and blocks is what a probe shows: the
    tests below would see a regression that passes the caller's dispositions on."""
    probe = _install_probe(sigprobe, str(tmp_path / "probe"))
    done = _as_caller(probe)
    assert done.returncode == 0, done.stderr
    assert _probed(probe) == {"SigIgn": 0x1001006, "SigBlk": 0x8002A00, "SigCgt": 0}
    assert (_mask(CALLER_IGNORES), _mask(CALLER_BLOCKS)) == (0x1001006, 0x8002A00)


@pytest.mark.parametrize("mode", ["foreground", "forked", "supervisor"])
def test_start_hook_and_init_get_default_signals_not_the_callers(make_container, sigprobe, lxcpath, tmp_path,
                                                                 monkeypatch, mode):
    """``lxc.hook.start`` and ``lxc.init.cmd`` are the probe itself (the hook through the hook
    runner's own ``sh -c "exec …"``), started by a CLI whose caller ignores and blocks signals. In
    the foreground the CLI is the monitor, and only the init child's reset stands between; a
    daemon's monitor (forked from the CLI, or the supervisor's) resets its own dispositions, which
    its pre-start hook on the host shows."""
    monkeypatch.setenv("LXCFRAME_SUPERVISOR", "1" if mode == "supervisor" else "0")
    pre_start = _install_probe(sigprobe, str(tmp_path / "pre-start-probe"))
    config = (("lxc.hook.start", "/bin/start-probe"), ("lxc.init.cmd", "/bin/init-probe"))
    container = make_container("sigsel", config=config if mode == "foreground" else
                               (*config, ("lxc.hook.pre-start", pre_start)))
    rootfs = _rootfs(container)
    start_hook = _install_probe(sigprobe, os.path.join(rootfs, "bin", "start-probe"))
    init = _install_probe(sigprobe, os.path.join(rootfs, "bin", "init-probe"))
    done = _cli_as_caller(lxcpath, "start", *(["-F"] if mode == "foreground" else []), "sigsel")
    assert done.returncode == 0, done.stderr
    assert container.wait("STOPPED", 30)
    assert _probed(start_hook) == DEFAULT_SIGNALS, "lxc.hook.start"
    assert _probed(init) == DEFAULT_SIGNALS, "lxc.init.cmd"
    if mode != "foreground":  # the foreground monitor is the caller: its host hooks are the caller's own
        assert _probed(pre_start) == DEFAULT_SIGNALS, "lxc.hook.pre-start of the monitor"


#: An lxc.hook.start script of the container's own: what of init (pid 1, ours until it executes the
#: payload) it reaches through /proc/1.
START_HOOK_PROBE = """#!/bin/sh
{ readlink /proc/1/fd/2; echo "fd=$?"; head -c 0 /proc/1/fd/2; echo "open=$?"; cat /proc/1/environ; echo "environ=$?"
  readlink /proc/1/exe; echo "exe=$?"; } > /probe.out 2>/dev/null
"""


def test_a_start_hook_of_the_container_cannot_reach_init(make_container):
    """The hook is the container's code running beside init: init is not dumpable by then, so without
    CAP_SYS_PTRACE its host descriptors, the runtime's environment and its executable are out of reach."""
    container = make_container("hookreach", config=(("lxc.hook.start", "/probe.sh"), ("lxc.cap.drop", "sys_ptrace"),
                                                    ("lxc.init.cmd", "/bin/true")))
    rootfs = _rootfs(container)
    script = os.path.join(rootfs, "probe.sh")
    with open(script, "w", encoding="ascii") as handle:
        handle.write(START_HOOK_PROBE)
    os.chmod(script, 0o755)
    assert container.start(foreground=True) == 0
    with open(os.path.join(rootfs, "probe.out"), encoding="utf-8", errors="replace") as handle:
        seen = handle.read()
    assert [line for line in seen.splitlines() if line.split("=")[0] in ("fd", "open", "exe")] == [
        "fd=1", "open=1", "exe=1"], seen
    # /proc/PID/environ stays readable to the same user without CAP_SYS_PTRACE: init blanked it.
    assert [line for line in seen.replace("\0", "").splitlines() if "=" in line and not line.startswith(
        ("fd=", "open=", "environ=", "exe="))] == [], seen


def test_execute_command_gets_default_signals_not_the_callers(make_container, sigprobe, lxcpath):
    """The command of ``execute`` is tini's child; tini restores the mask it got from the init child."""
    container = make_container("sigexe")
    probe = _install_probe(sigprobe, os.path.join(_rootfs(container), "bin", "execute-probe"))
    done = _cli_as_caller(lxcpath, "execute", "sigexe", "--", "/bin/execute-probe")
    assert done.returncode == 0, done.stderr
    assert _probed(probe) == DEFAULT_SIGNALS


def test_attached_command_gets_default_signals_not_the_callers(make_container, sigprobe, lxcpath):
    """The attaching process executes tini, whose child executes the command."""
    container = make_container("sigatt")
    probe = _install_probe(sigprobe, os.path.join(_rootfs(container), "bin", "attach-probe"))
    container.start()
    try:
        done = _cli_as_caller(lxcpath, "attach", "sigatt", "--", "/bin/attach-probe")
    finally:
        container.stop(kill=True)
    assert done.returncode == 0, done.stderr
    assert _probed(probe) == DEFAULT_SIGNALS


#: A library caller with a second thread, which attaches without a server: its attaching process
#: is spawned (posix_spawn, which leaves the C library's own signals 32 and 33 ignored in what it
#: starts), not forked.
THREADED_CALLER = (
    "import sys, threading\n"
    "from lxcframe import Container\n"
    "idle = threading.Event()\n"
    "thread = threading.Thread(target=idle.wait)\n"
    "thread.start()\n"
    "try:\n"
    "    code = Container(sys.argv[1], sys.argv[2], server=False).attach_wait([sys.argv[3]])\n"
    "finally:\n"
    "    idle.set()\n"
    "    thread.join()\n"
    "sys.exit(code)\n"
)


def test_command_attached_by_a_threaded_caller_gets_default_signals(make_container, sigprobe, lxcpath):
    """Even the signals Python cannot name: none is left ignored by the spawn on the way."""
    container = make_container("sigthr")
    probe = _install_probe(sigprobe, os.path.join(_rootfs(container), "bin", "thread-probe"))
    container.start()
    try:
        done = _as_caller(sys.executable, "-c", THREADED_CALLER, "sigthr", lxcpath, "/bin/thread-probe")
    finally:
        container.stop(kill=True)
    assert done.returncode == 0, done.stderr
    assert _probed(probe) == DEFAULT_SIGNALS


def _gone(pid: int, start: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if st.process_start_time(pid) != start:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("config", [
    (("lxc.init.uid", "1000"), ("lxc.init.gid", "1000"), ("lxc.init.cmd", "/bin/sleep 1000")),
    (*ROOT_MAP, ("lxc.init.cmd", "/bin/sleep 1000")),
], ids=["init-uid", "unprivileged"])
def test_init_dies_with_its_monitor_after_a_change_of_ids(per_container_monitor, make_container, config):
    """The kernel clears the parent-death signal at setuid: it must be armed again after."""
    container = make_container("pdeath", config=config)
    init = container.start()
    start = st.process_start_time(init)
    os.kill(container.current_state().monitor_pid, signal.SIGKILL)
    try:
        assert _gone(init, start, 10), "init outlived its monitor"
    finally:
        if st.process_start_time(init) == start:
            os.kill(init, signal.SIGKILL)
        container.wait("STOPPED", 10)


def test_cli_attach_passes_only_the_descriptors_asked_for(make_container, lxcpath):
    container = make_container("clifd")
    container.start()
    try:
        read_end, write_end = os.pipe()
        os.set_inheritable(write_end, True)
        try:
            done = subprocess.run([sys.executable, "-m", "lxcframe", "-P", lxcpath, "attach", "clifd",
                                   "--pass-fd", str(write_end), "--", "/bin/sh", "-c",
                                   f"ls /proc/self/fd | tr '\\n' ' ' >&{write_end}"],
                                  pass_fds=(write_end,), capture_output=True, text=True, timeout=60, check=False)
        finally:
            os.close(write_end)
        with os.fdopen(read_end) as pipe:
            seen = pipe.read().split()
        assert done.returncode == 0, done.stderr
        assert str(write_end) in seen
    finally:
        container.stop(kill=True)


def test_execute_of_a_missing_command_is_a_clear_error(make_container):
    container = make_container("missing")
    with pytest.raises(LxcframeError, match="cannot execute /no/such/command"):
        container.execute(["/no/such/command"])
    container.start()
    try:
        with pytest.raises(ContainerError, match="cannot execute /no/such/command"):
            container.attach_wait(["/no/such/command"])
    finally:
        container.stop(kill=True)
