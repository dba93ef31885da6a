"""A bundle's hooks, run as runtime-spec config.md says, on ``runc`` and on ``lxcframe-oci`` alike: each
point records what it got (argv, environment, the state on stdin, its mount namespace, whether it sees
the rootfs as ``/``, its working directory) and the order the points ran in. Then a hook past its
timeout fails ``create`` with nothing left behind, a failing ``startContainer`` fails ``start`` and a
failing ``poststart`` only warns.

Where runc 1.1 differs from the spec (it runs ``poststart`` within ``create``), the runc case says so and
the spec's behaviour is asserted of lxcframe-oci.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..oci_tiers.runtimes import make_busybox_rootfs
from ..security.test_process_isolation import CALLER, CALLER_BLOCKS  # a caller ignoring and blocking signals
from .test_lifecycle import RUNTIMES, TIMEOUT, Runtime, runtime_env

#: A file only the container's root has: a hook that sees it at / runs inside the container.
MARKER = "oci-hooks-rootfs"

#: The recorder every hook runs, as ``sh -c RECORD sh POINT OUT``: what it was given, into OUT/POINT.*.
#: ``/proc/$$`` names the shell only where /proc is of the hook's pid namespace (on the host); the
#: variables it exports (its environment, and the PWD and SHLVL it adds) are what ``env`` shows.
RECORD = r"""
point=$1 out=$2
cat > "$out/$point.state"
{ tr '\0' '\n' < /proc/$$/cmdline; } > "$out/$point.argv" 2> /dev/null
{ tr '\0' '\n' < /proc/$$/environ; } > "$out/$point.env" 2> /dev/null
env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^OLDPWD=' > "$out/$point.exported"
readlink /proc/self/ns/mnt > "$out/$point.mnt"
if [ -e ./MARKER ]; then echo rootfs; else pwd; fi > "$out/$point.cwd"
if [ -e /MARKER ]; then echo container; else echo host; fi > "$out/$point.root"
echo "$point" >> "$out/order"
""".replace("MARKER", MARKER)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_busybox_rootfs(tmp_path_factory.mktemp("hooks-root") / "rootfs")
    (root / MARKER).write_text("")
    (root / "out").mkdir()
    return root


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest, tmp_path: Path, rootfs: Path, host: object) -> Iterator[Runtime]:
    env = runtime_env(tmp_path, request.param)
    env["RUNTIME_ENV_MARK"] = "from-the-runtime"
    made = Runtime(request.param, tmp_path, rootfs, env)
    yield made
    made.cleanup()


def recorder(point: str, out: str, *, argv0: str = "sh", path: str = "/bin/sh", **more: Any) -> dict[str, Any]:
    return {"path": path, "args": [argv0, "-c", RECORD, "sh", point, out], **more}


def hooked_bundle(runtime: Runtime, out: Path, hooks: dict[str, Any], args: list[str] | None = None,
                  name: str = "b") -> Path:
    """The lifecycle test's bundle with ``hooks``, ``out`` bound at /out and an annotation."""
    bundle = runtime.bundle(args or ["sleep", "100"], name=name)
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]})
    config["hooks"] = hooks
    config["annotations"] = {"org.example.hooks": "yes"}
    (bundle / "config.json").write_text(json.dumps(config, indent=1))
    return bundle


def _devnull() -> dict[str, Any]:
    return {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def create(runtime: Runtime, container_id: str, bundle: Path) -> tuple[int, str]:
    """``create``: its exit status and its stderr (a file: init keeps create's stdio)."""
    errors = runtime.tmp / f"{container_id}.create-stderr"
    with open(errors, "w", encoding="utf-8") as stderr:
        created = runtime.create(container_id, bundle, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=stderr)
    return created.returncode, errors.read_text()


def _read(out: Path, point: str, what: str) -> str:
    return (out / f"{point}.{what}").read_text()


def test_each_point_gets_the_state_on_stdin_at_its_moment(runtime: Runtime) -> None:
    out = runtime.tmp / "out"
    out.mkdir()
    host_out = str(out)
    hooks = {
        # argv[0] is args[0], whatever the path; env exactly as given.
        "prestart": [recorder("prestart", host_out)],
        "createRuntime": [recorder("createRuntime", host_out, argv0="runtime-hook",
                                   env=["ONLY=this", "AND=two words"], timeout=30)],
        # Before the pivot: the host's /bin/sh, the host's path to out.
        "createContainer": [recorder("createContainer", host_out)],
        # After start, in the container: its /bin/sh (busybox), its /out.
        "startContainer": [recorder("startContainer", "/out")],
        "poststart": [recorder("poststart", host_out)],
        "poststop": [recorder("poststop", host_out)],
    }
    bundle = hooked_bundle(runtime, out, hooks)
    status, error = create(runtime, "h", bundle)
    assert status == 0, error
    init = runtime.state("h")["pid"]
    assert isinstance(init, int)
    created_order = (out / "order").read_text().split()
    started = runtime.run("start", "h")
    assert started.returncode == 0, started.stderr
    started_order = (out / "order").read_text().split()
    container_mnt = os.readlink(f"/proc/{init}/ns/mnt")
    assert runtime.run("kill", "h", "KILL").returncode == 0
    runtime.wait_status("h", "stopped")
    deleted = runtime.run("delete", "h")
    assert deleted.returncode == 0, deleted.stderr
    assert not (runtime.root / "h").exists()
    order = (out / "order").read_text().split()

    if runtime.name == "runc":
        # runc 1.1 runs poststart within create, once init waits on the fifo (not the spec's moment).
        assert created_order == ["prestart", "createRuntime", "createContainer", "poststart"]
    else:
        assert created_order == ["prestart", "createRuntime", "createContainer"]
        assert started_order == [*created_order, "startContainer", "poststart"]
        assert order == [*started_order, "poststop"]
    assert order[-1] == "poststop"

    states = {point: json.loads(_read(out, point, "state")) for point in hooks}
    for point, state in states.items():
        assert (state["id"], state["bundle"], state["ociVersion"][:2]) == ("h", str(bundle), "1."), point
        assert state["annotations"] == {"org.example.hooks": "yes"}, point
    assert [states[point]["status"] for point in hooks] == [
        "creating", "creating", "creating", "created",
        "created" if runtime.name == "runc" else "running", "stopped"]
    # The host pid of init where the hook runs on the host; init's own pid where init runs it (as runc:
    # its pid in the container's pid namespace); none once stopped.
    assert states["prestart"]["pid"] == states["createRuntime"]["pid"] == states["poststart"]["pid"] == init
    assert states["createContainer"]["pid"] == states["startContainer"]["pid"] == 1
    assert "pid" not in states["poststop"]

    assert _read(out, "createRuntime", "argv").split("\n")[0] == "runtime-hook"
    assert _read(out, "createRuntime", "env").splitlines() == ["ONLY=this", "AND=two words"]
    # Without env: the runtime's own on the host, the process's (as init's) in the container.
    assert "RUNTIME_ENV_MARK=from-the-runtime" in _read(out, "prestart", "env").splitlines()
    # Nothing of the runtime's environment reaches into the container: init's hooks get the process's
    # (runc adds HOME before startContainer, lxcframe LXC's container=lxc, as for the process).
    for point in ("createContainer", "startContainer"):
        exported = set(_read(out, point, "exported").splitlines()) - {"HOME=/root", "container=lxc"}
        assert exported == {"PATH=/bin:/usr/bin", "TERM=xterm"}, point

    own_mnt = os.readlink("/proc/self/ns/mnt")
    mnt = {point: _read(out, point, "mnt").strip() for point in hooks}
    root = {point: _read(out, point, "root").strip() for point in hooks}
    for point in ("prestart", "createRuntime", "poststart", "poststop"):
        assert (mnt[point], root[point]) == (own_mnt, "host"), point
    # createContainer: the container's mount namespace, before the pivot (the rootfs is not / yet).
    assert (mnt["createContainer"], root["createContainer"]) == (container_mnt, "host")
    assert _read(out, "createContainer", "cwd").strip() == "rootfs"  # its working directory (as mounted)
    assert (mnt["startContainer"], root["startContainer"]) == (container_mnt, "container")


def _leftovers(runtime: Runtime, container_id: str, name: str) -> list[str]:
    """What a container could leave on the host: its state directory, its cgroups, its mounts."""
    found = []
    if (runtime.root / container_id).exists():
        found.append(f"{runtime.root / container_id}")
    path = runtime.cgroups_path(name)
    for controller in ("memory", "pids", "unified", ""):
        base = Path("/sys/fs/cgroup") / controller
        for directory, subdirectories, _ in os.walk(base):
            if path in subdirectories:
                found.append(os.path.join(directory, path))
            if directory.count("/") > 8:
                subdirectories.clear()
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        found += [line for line in handle if str(runtime.root) in line or str(runtime.rootfs) in line]
    return found


SLEEP = "60.4321"


def _sleepers() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if handle.read().split(b"\0")[:2] == [b"sleep", SLEEP.encode()]:
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


@pytest.mark.parametrize("point", ["createRuntime", "createContainer"])
def test_a_hook_past_its_timeout_fails_create_and_leaves_nothing(runtime: Runtime, point: str) -> None:
    out = runtime.tmp / "out"
    out.mkdir()
    # A length no other sleeper has: what is left of it is found by its command line.
    sleeper = {"path": "/bin/sh", "args": ["sh", "-c", f"exec sleep {SLEEP}"], "timeout": 1}
    bundle = hooked_bundle(runtime, out, {point: [sleeper]}, name="t")
    status, error = create(runtime, "t", bundle)
    assert status != 0
    assert "timeout" in error, error
    if runtime.name == "lxcframe":
        assert f"{point} hook #0 (/bin/sh): ran past its timeout of 1 s" in error, error
    assert _sleepers() == []
    assert runtime.run("state", "t").returncode != 0
    assert _leftovers(runtime, "t", "t") == []


def test_a_failing_create_container_hook_fails_create_naming_it(runtime: Runtime) -> None:
    out = runtime.tmp / "out"
    out.mkdir()
    failing = {"path": "/bin/sh", "args": ["sh", "-c", "echo no mounts for you >&2; exit 7"]}
    bundle = hooked_bundle(runtime, out, {"createContainer": [failing], "poststop": [recorder("poststop", str(out))]},
                           name="f")
    status, error = create(runtime, "f", bundle)
    assert status == 1
    if runtime.name == "lxcframe":
        assert "createContainer hook #0 (/bin/sh): exit status 7: no mounts for you" in error, error
    assert runtime.run("state", "f").returncode != 0
    assert _leftovers(runtime, "f", "f") == []


def test_a_failing_start_container_hook_fails_start(runtime: Runtime) -> None:
    out = runtime.tmp / "out"
    out.mkdir()
    failing = {"path": "/bin/sh", "args": ["sh", "-c", "echo refused >&2; exit 3"]}
    bundle = hooked_bundle(runtime, out, {"startContainer": [failing]}, name="s")
    assert runtime.create("s", bundle, **_devnull()).returncode == 0
    started = runtime.run("start", "s")
    if runtime.name == "runc":
        # runc's start returns once init read the fifo; init then fails on its own.
        assert runtime.wait_status("s", "stopped")["status"] == "stopped"
        return
    assert started.returncode == 1
    assert "startContainer hook #0 (/bin/sh): exit status 3: refused" in started.stderr, started.stderr
    assert runtime.wait_status("s", "stopped")["status"] == "stopped"
    assert runtime.run("delete", "s").returncode == 0
    assert _leftovers(runtime, "s", "s") == []


def test_a_failing_poststart_hook_only_warns(runtime: Runtime) -> None:
    out = runtime.tmp / "out"
    out.mkdir()
    hooks = {"poststart": [{"path": "/bin/false"}, recorder("poststart", str(out))],
             "poststop": [{"path": "/bin/false"}, recorder("poststop", str(out))]}
    bundle = hooked_bundle(runtime, out, hooks, name="p")
    status, error = create(runtime, "p", bundle)
    if runtime.name == "runc":
        # runc 1.1 runs poststart in create and fails it (killing the container).
        assert status == 1
        return
    assert status == 0, error
    started = runtime.run("start", "p")
    assert started.returncode == 0, started.stderr
    assert "warning: poststart hook #0 (/bin/false): exit status 1" in started.stderr
    assert runtime.state("p")["status"] == "running"
    # The next hook ran all the same.
    assert (out / "order").read_text().split() == ["poststart"]
    deleted = runtime.run("delete", "--force", "p")
    assert deleted.returncode == 0
    assert "warning: poststop hook #0 (/bin/false): exit status 1" in deleted.stderr
    assert (out / "order").read_text().split() == ["poststart", "poststop"]


# --- signals: nothing of the caller's dispositions reaches into the container -----------------------------------

def _mask(signals: tuple[signal.Signals, ...]) -> int:
    return sum(1 << (signum - 1) for signum in signals)


def _masks(status: str) -> dict[str, str]:
    return {line.split(":")[0]: line.split()[1] for line in status.splitlines()
            if line.startswith(("SigIgn:", "SigBlk:"))}


def test_init_and_exec_get_no_ignored_or_blocked_signal_of_the_caller(runtime: Runtime) -> None:
    """busybox ``cat`` reads its own /proc/self/status: as init (create and start by the caller) and as an
    ``exec``'d process (exec by the caller). No shell in between: busybox ash ignores SIGQUIT itself.

    runc 1.1 passes the caller's blocked signals on to init (its SigBlk is the caller's): of runc, only
    the ignored ones are asserted."""
    default = {"SigIgn": "0000000000000000", "SigBlk": "0000000000000000"}
    if runtime.name == "runc":
        default = {"SigIgn": "0000000000000000", "SigBlk": f"{_mask(CALLER_BLOCKS):016x}"}
    status = runtime.tmp / "init-status"
    bundle = runtime.bundle(["cat", "/proc/self/status"], name="sig")
    errors = runtime.tmp / "create-stderr"
    runtime.ids.append("sig")
    # Files, not pipes: init keeps create's stdio.
    with open(status, "w", encoding="utf-8") as stdout, open(errors, "w", encoding="utf-8") as stderr:
        created = subprocess.run([sys.executable, "-c", CALLER, *runtime.argv, "create", "--bundle", str(bundle),
                                  "sig"], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                 env=runtime.env, timeout=60, check=False)
    assert created.returncode == 0, errors.read_text()
    started = subprocess.run([sys.executable, "-c", CALLER, *runtime.argv, "start", "sig"], capture_output=True,
                             env=runtime.env, timeout=60, check=False, text=True)
    assert started.returncode == 0, started.stderr
    runtime.wait_status("sig", "stopped")
    assert _masks(status.read_text()) == default, "init"

    assert runtime.create("sx", runtime.bundle(["sleep", "100"], name="sx"), **_devnull()).returncode == 0
    assert runtime.run("start", "sx").returncode == 0
    process = runtime.tmp / "process.json"
    process.write_text(json.dumps({"args": ["cat", "/proc/self/status"], "cwd": "/", "env": ["PATH=/bin"],
                                   "user": {"uid": 0, "gid": 0}}))
    executed = subprocess.run([sys.executable, "-c", CALLER, *runtime.argv, "exec", "--process", str(process), "sx"],
                              stdin=subprocess.DEVNULL, capture_output=True, env=runtime.env, timeout=60, check=False,
                              text=True)
    assert executed.returncode == 0, executed.stderr
    assert _masks(executed.stdout) == default, "exec"


def test_a_hook_that_reads_no_state_is_no_failure(runtime: Runtime) -> None:
    """The state (a large annotation: more than a pipe holds) written to hooks that close their stdin
    unread: the write fails with EPIPE, which fails neither init nor the runtime, and the hooks count
    as having run."""
    out = runtime.tmp / "out"
    out.mkdir()
    unread = {"path": "/bin/sh", "args": ["sh", "-c", 'exec 0<&-; echo "$0" >> "$1"', "", "ran"]}
    hooks = {point: [{**unread, "args": [*unread["args"][:3], point, str(out / "order") if point != "startContainer"
                                         else "/out/order"]}]
             for point in ("createRuntime", "createContainer", "startContainer", "poststop")}
    bundle = hooked_bundle(runtime, out, hooks, args=["sh", "-c", "echo ran > /out/process"], name="u")
    config = json.loads((bundle / "config.json").read_text())
    config["annotations"]["org.example.large"] = "x" * (256 << 10)
    (bundle / "config.json").write_text(json.dumps(config))
    status, error = create(runtime, "u", bundle)
    assert status == 0, error
    started = runtime.run("start", "u")
    assert started.returncode == 0, started.stderr
    runtime.wait_status("u", "stopped")
    assert (out / "process").read_text() == "ran\n"
    assert runtime.run("delete", "u").returncode == 0
    assert (out / "order").read_text().split() == ["createRuntime", "createContainer", "startContainer", "poststop"]


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
            found.update(int(word) for word in handle.read().split())
    return found


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("runtime", ["lxcframe"], indirect=True)
def test_delete_force_of_a_create_killed_halfway_leaves_nothing(runtime: Runtime) -> None:
    out = runtime.tmp / "out"
    out.mkdir()
    marker = out / "hook.pid"
    # createRuntime holds create in the middle of the start: cgroups made, init forked and waiting.
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"echo $$ > {marker}; exec sleep {SLEEP}"]}
    bundle = hooked_bundle(runtime, out, {"createRuntime": [hook]}, name="k")
    runtime.ids.append("k")
    creating = subprocess.Popen([*runtime.argv, "create", "--bundle", str(bundle), "k"], env=runtime.env,
                                **_devnull())
    hook_pid = None
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() or not marker.read_text().strip():
            assert creating.poll() is None and time.monotonic() < deadline, "create did not reach the hook"
            time.sleep(0.02)
        hook_pid = int(marker.read_text())
        [init] = _children(creating.pid) - {hook_pid}
        assert _leftovers(runtime, "k", "k") != []  # its directory and cgroups are there
        creating.kill()
        creating.wait(TIMEOUT)
    finally:
        if hook_pid is not None:
            os.kill(hook_pid, signal.SIGKILL)
        if creating.poll() is None:
            creating.kill()
            creating.wait(TIMEOUT)
    assert runtime.run("state", "k").returncode == 1  # no state.json: not a container yet
    done = runtime.run("delete", "--force", "k")
    assert done.returncode == 0, done.stderr
    assert _wait_gone(init)
    assert _leftovers(runtime, "k", "k") == []
    assert not any((runtime.root / ".run").glob("**/k"))  # lxcframe's own records of it


#: Run by a startContainer hook, a binary of the container's own: what of its init (the runtime's process,
#: pid 1 until it executes the payload) it can reach.
PROBE_INIT = """
readlink /proc/1/fd/2 > /out/fd 2>&1; echo "rc=$?" >> /out/fd
head -c 0 /proc/1/fd/2 > /out/open 2>&1; echo "rc=$?" >> /out/open
cat /proc/1/environ > /out/environ 2>&1; echo "rc=$?" >> /out/environ
readlink /proc/1/exe > /out/exe 2>&1; echo "rc=$?" >> /out/exe
ls /proc/1/map_files > /out/maps 2>&1; echo "rc=$?" >> /out/maps
"""


#: runc spec's capabilities: no CAP_SYS_PTRACE, which would let the container trace what is not dumpable.
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


# runc 1.1 runs startContainer hooks from its init with all its capabilities: they read its descriptors.
@pytest.mark.parametrize("runtime", ["lxcframe"], indirect=True)
def test_a_start_container_hook_of_the_image_cannot_reach_the_runtimes_init(runtime: Runtime) -> None:
    out = runtime.tmp / "out"
    out.mkdir()
    hook = {"path": "/bin/sh", "args": ["sh", "-c", PROBE_INIT]}
    bundle = hooked_bundle(runtime, out, {"startContainer": [hook]}, args=["true"], name="p")
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["capabilities"] = {kind: DEFAULT_CAPS for kind in ("bounding", "effective", "permitted")}
    (bundle / "config.json").write_text(json.dumps(config))
    status, error = create(runtime, "p", bundle)
    assert status == 0, error
    assert runtime.run("start", "p").returncode == 0
    seen = {name: (out / name).read_text() for name in ("fd", "open", "environ", "exe", "maps")}
    # Neither its descriptors (create's stderr: a host file), nor its environment (the runtime's, the
    # host's), nor its executable and mappings (host files): init is not dumpable while anything of the
    # container runs beside it.
    for name in ("fd", "open", "exe"):
        assert seen[name].endswith("rc=1\n"), f"{name}: {seen[name]}"
    assert "=" not in seen["environ"].replace("rc=", ""), seen["environ"]  # unreadable, or blanked
    assert seen["maps"] == "rc=0\n", seen["maps"]  # the directory lists no mapping
    assert "from-the-runtime" not in "".join(seen.values())
