"""Tier 0: the same OCI lifecycles and error cases on runc and on the runtime under test.

Each scenario drives a runtime as podman and containerd's shim do (global ``--root``, ``--log``,
``--log-format json``; ``create`` and ``exec`` under a subreaper) and records what it answered: exit
codes, ``state`` in comparable terms (status, pid as the init's or 0, id, bundle, annotations), how
the container's processes ended, their output. runc's record must be the one written here (runc is
the control); the runtime under test must give runc's record, entry by entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..bound_namespace import bound_namespace, in_namespace
from .harness import Oci, Transcript, assert_transcript, read_pid, state_summary
from .runtimes import make_bundle, runtime_params

ANNOTATIONS = {"org.example.tier": "0", "org.example.owner": "lxcframe tests"}
LOOP = "trap 'exit 7' USR1; trap 'exit 8' TERM; echo ready; while :; do sleep 0.05; done"
Scenario = Callable[[Oci, Path], Transcript]


def _bundle(oci: Oci, rootfs: Path, cid: str, args: list[str], annotations: dict[str, str] | None = None) -> Path:
    return make_bundle(oci.work / f"bundle-{cid}", rootfs, args, annotations)


def _process(args: list[str]) -> dict[str, Any]:
    return {"args": args, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}, "terminal": False}


def _differential(runtime: str, oci: Callable[[str], Oci], rootfs: Path, scenario: Scenario,
                  want: list[tuple[str, str]]) -> None:
    control = scenario(oci("runc"), rootfs)
    assert_transcript(control, want, "runc")
    if runtime != "runc":
        assert_transcript(scenario(oci(runtime), rootfs), control.entries, runtime)


def _summary(oci: Oci, cid: str, bundle: Path, init: int, annotations: dict[str, str]) -> str:
    return state_summary(*oci.state(cid), cid, bundle, init, annotations)


# --- the lifecycle: create → state → start → pause/resume → ps → exec → exit → state → delete ---------


def lifecycle(oci: Oci, rootfs: Path) -> Transcript:
    t, cid = Transcript(), "tier0-life"
    bundle = _bundle(oci, rootfs, cid, ["sh", "-c", 'echo ready; read line; echo "got $line"; exit 3'], ANNOTATIONS)
    launched, pid_file = oci.create(cid, bundle)
    created = launched.answer()
    t.note(f"create stderr: {created.stderr} log: {created.log}")
    t.add("create", created.rc)
    init = read_pid(pid_file)
    t.add("pid file", init > 0)

    def state() -> str:
        return _summary(oci, cid, bundle, init, ANNOTATIONS)

    t.add("state created", state())
    t.add("start", oci.call("start", cid).rc)
    t.add("stdout ready", launched.wait_output("ready\n"))
    t.add("state running", state())
    t.add("pause", oci.call("pause", cid).rc)
    t.add("state paused", state())
    t.add("resume", oci.call("resume", cid).rc)
    t.add("state resumed", state())
    ps = oci.call("ps", "--format", "json", cid)
    listed = json.loads(ps.stdout) if ps.rc == 0 else []
    t.add("ps", f"rc={ps.rc} list={isinstance(listed, list)} init={init in listed}")
    execed, exec_pid_file = oci.exec(cid, _process(["sh", "-c", "exit 5"]))
    t.add("exec", execed.command_rc())
    exec_pid = read_pid(exec_pid_file)
    t.add("exec pid file", exec_pid > 0 and exec_pid != init)
    t.add("exec status", execed.exit_of(exec_pid, timeout=10))
    t.add("stdin written", launched.send("go\n"))
    t.add("init status", launched.exit_of(init))
    t.add("stdout", repr(launched.output()))
    t.add("state stopped", state())
    t.add("start stopped", oci.call("start", cid).rc)
    t.add("delete", oci.call("delete", cid).rc)
    t.add("state deleted", state())
    t.add("delete --force deleted", oci.call("delete", "--force", cid).rc)
    return t


LIFECYCLE = [
    ("create", "0"),
    ("pid file", "True"),
    ("state created", "rc=0 status=created pid=init wrong=-"),
    ("start", "0"),
    ("stdout ready", "True"),
    ("state running", "rc=0 status=running pid=init wrong=-"),
    ("pause", "0"),
    ("state paused", "rc=0 status=paused pid=init wrong=-"),
    ("resume", "0"),
    ("state resumed", "rc=0 status=running pid=init wrong=-"),
    ("ps", "rc=0 list=True init=True"),
    ("exec", "0"),
    ("exec pid file", "True"),
    ("exec status", "exit 5"),
    ("stdin written", "True"),
    ("init status", "exit 3"),
    ("stdout", repr("ready\ngot go\n")),
    ("state stopped", "rc=0 status=stopped pid=0 wrong=-"),
    ("start stopped", "1"),
    ("delete", "0"),
    ("state deleted", "rc=1 no-such-container=True"),
    ("delete --force deleted", "0"),
]


@pytest.mark.parametrize("runtime", runtime_params())
def test_lifecycle(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    _differential(runtime, oci, busybox_rootfs, lifecycle, LIFECYCLE)


# --- hooks: each point, in order, with the state on its stdin --------------------------------------

#: A hook's record: its point, the status and pid of the state it read (``sh -c HOOK sh POINT LOG``);
#: runs on the host and, for startContainer, in the container (busybox).
HOOK = ('state=$(cat); status=$(echo "$state" | sed -n \'s/.*"status": *"\\([a-z]*\\)".*/\\1/p\'); '
        'pid=$(echo "$state" | sed -n \'s/.*"pid": *\\([0-9]*\\).*/\\1/p\'); echo "$1 $status ${pid:-none}" >> "$2"')


def hooks(oci: Oci, rootfs: Path) -> Transcript:
    t, cid = Transcript(), "tier0-hooks"
    log = oci.work / "hooks.log"
    bundle = _bundle(oci, rootfs, cid, ["sh", "-c", "exit 2"], ANNOTATIONS)
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"].append({"destination": "/log", "type": "bind", "source": str(oci.work), "options": ["rbind"]})
    # poststart is left out: runc 1.1 runs it within create.
    config["hooks"] = {point: [{"path": "/bin/sh", "args": ["sh", "-c", HOOK, "sh", point, where]}]
                       for point, where in (("prestart", str(log)), ("createRuntime", str(log)),
                                            ("createContainer", str(log)), ("startContainer", "/log/hooks.log"),
                                            ("poststop", str(log)))}
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    launched, pid_file = oci.create(cid, bundle)
    created = launched.answer()
    t.note(f"create stderr: {created.stderr} log: {created.log}")
    t.add("create", created.rc)
    init = read_pid(pid_file)

    def records() -> str:
        text = log.read_text() if log.exists() else ""
        return " | ".join(line.replace(f" {init}", " init") for line in text.splitlines())

    t.add("hooks after create", records())
    t.add("start", oci.call("start", cid).rc)
    t.add("init status", launched.exit_of(init))
    t.add("hooks after start", records())
    t.add("delete", oci.call("delete", cid).rc)
    t.add("hooks after delete", records())
    return t


HOOKS = [
    ("create", "0"),
    ("hooks after create", "prestart creating init | createRuntime creating init | createContainer creating 1"),
    ("start", "0"),
    ("init status", "exit 2"),
    ("hooks after start", "prestart creating init | createRuntime creating init | createContainer creating 1 | "
                          "startContainer created 1"),
    ("delete", "0"),
    ("hooks after delete", "prestart creating init | createRuntime creating init | createContainer creating 1 | "
                           "startContainer created 1 | poststop stopped none"),
]


@pytest.mark.parametrize("runtime", runtime_params())
def test_hooks(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    _differential(runtime, oci, busybox_rootfs, hooks, HOOKS)


# --- a terminal: the pty master sent over --console-socket, for the init and for an exec ------------


def terminal(oci: Oci, rootfs: Path) -> Transcript:
    t, cid = Transcript(), "tier0-tty"
    bundle = make_bundle(oci.work / f"bundle-{cid}", rootfs, ["sh", "-c", "tty; read line; echo got-$line; exit 4"],
                         terminal=True)
    console = oci.console_socket()
    launched, pid_file = oci.create(cid, bundle, console)
    created = launched.answer()
    t.note(f"create: {created.stderr} {created.log}")
    t.add("create", created.rc)
    init = read_pid(pid_file)
    t.add("pty master received", console.receive(timeout=10))
    t.add("start", oci.call("start", cid).rc)
    t.add("init's tty", console.read_until("/dev/pts/0", timeout=10).strip())
    exec_console = oci.console_socket()
    execed, exec_pid_file = oci.exec(cid, {**_process(["sh", "-c", "tty; exit 6"]), "terminal": True}, exec_console)
    t.add("exec", execed.command_rc())
    t.add("exec pty master received", exec_console.receive(timeout=10))
    t.add("exec's tty", console_line(exec_console.read_until("/dev/pts/1", timeout=10)))
    t.add("exec status", execed.exit_of(read_pid(exec_pid_file), timeout=10))
    assert console.master is not None
    os.write(console.master, b"go\n")
    t.add("init echo and answer", console_line(console.read_until("got-go", timeout=10), last=True))
    t.add("init status", launched.exit_of(init, timeout=10))
    t.add("delete", oci.call("delete", cid).rc)
    return t


def console_line(text: str, last: bool = False) -> str:
    """The first (or last) line a terminal showed, without its carriage return."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if last else lines[0]) if lines else ""


@pytest.mark.parametrize("runtime", runtime_params())
def test_terminal(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    want = [("create", "0"), ("pty master received", "True"), ("start", "0"), ("init's tty", "/dev/pts/0"),
            ("exec", "0"), ("exec pty master received", "True"), ("exec's tty", "/dev/pts/1"),
            ("exec status", "exit 6"), ("init echo and answer", "got-go"), ("init status", "exit 4"),
            ("delete", "0")]
    _differential(runtime, oci, busybox_rootfs, terminal, want)


# --- ids that do not exist, and a duplicate id (oci.md §4.5) ------------------------------------------


def unknown_id(oci: Oci, _rootfs: Path) -> Transcript:
    t = Transcript()
    for args in (("state",), ("start",), ("kill",), ("kill", "KILL"), ("delete",), ("pause",), ("resume",)):
        answer = oci.call(args[0], "tier0-nobody", *args[1:])
        t.note(f"{args}: {answer.stderr} {answer.log}")
        t.add(" ".join(args), f"rc={answer.rc} does-not-exist={answer.says('does not exist')}")
    t.add("delete --force", oci.call("delete", "--force", "tier0-nobody").rc)
    errors = oci.call("state", "tier0-nobody").errors()
    t.add("log line", sorted({"level", "msg", "time"} - set(errors[-1])) if errors else "no error line")
    return t


UNKNOWN_ID = [
    ("state", "rc=1 does-not-exist=True"),
    ("start", "rc=1 does-not-exist=True"),
    ("kill", "rc=1 does-not-exist=True"),
    ("kill KILL", "rc=1 does-not-exist=True"),
    ("delete", "rc=1 does-not-exist=True"),
    ("pause", "rc=1 does-not-exist=True"),
    ("resume", "rc=1 does-not-exist=True"),
    ("delete --force", "0"),
    ("log line", "[]"),
]


@pytest.mark.parametrize("runtime", runtime_params())
def test_unknown_id(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    _differential(runtime, oci, busybox_rootfs, unknown_id, UNKNOWN_ID)


def duplicate_create_and_second_start(oci: Oci, rootfs: Path) -> Transcript:
    t, cid = Transcript(), "tier0-dup"
    bundle = _bundle(oci, rootfs, cid, ["sh", "-c", LOOP])
    first, pid_file = oci.create(cid, bundle)
    t.add("create", first.command_rc())
    init = read_pid(pid_file)
    second, _ = oci.create(cid, bundle)
    again = second.answer()
    t.add("create again", f"rc={again.rc} already-exists={again.says('already exists')}")
    t.add("state", _summary(oci, cid, bundle, init, {}))
    t.add("start", oci.call("start", cid).rc)
    t.add("start again", oci.call("start", cid).rc)
    t.add("state running", _summary(oci, cid, bundle, init, {}))
    t.add("delete running", oci.call("delete", cid).rc)
    t.add("delete --force running", oci.call("delete", "--force", cid).rc)
    t.add("init status", first.exit_of(init))
    t.add("state deleted", _summary(oci, cid, bundle, init, {}))
    return t


DUPLICATE = [
    ("create", "0"),
    ("create again", "rc=1 already-exists=True"),
    ("state", "rc=0 status=created pid=init wrong=-"),
    ("start", "0"),
    ("start again", "1"),
    ("state running", "rc=0 status=running pid=init wrong=-"),
    ("delete running", "1"),
    ("delete --force running", "0"),
    ("init status", "signal 9"),
    ("state deleted", "rc=1 no-such-container=True"),
]


@pytest.mark.parametrize("runtime", runtime_params())
def test_duplicate_create_and_second_start(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    _differential(runtime, oci, busybox_rootfs, duplicate_create_and_second_start, DUPLICATE)


# --- signals: numbers, names with and without SIG, the default, --all, a created container -----------


def signalled(spelling: tuple[str, ...]) -> Scenario:
    def scenario(oci: Oci, rootfs: Path) -> Transcript:
        t, cid = Transcript(), "tier0-sig"
        bundle = _bundle(oci, rootfs, cid, ["sh", "-c", LOOP])
        launched, pid_file = oci.create(cid, bundle)
        t.add("create", launched.command_rc())
        init = read_pid(pid_file)
        t.add("start", oci.call("start", cid).rc)
        t.add("ready", launched.wait_output("ready\n"))
        answer = oci.call("kill", cid, *spelling)
        t.note(f"kill: {answer.stderr} {answer.log}")
        t.add("kill", answer.rc)
        t.add("init status", launched.exit_of(init, timeout=10))
        t.add("state", _summary(oci, cid, bundle, init, {}))
        t.add("delete", oci.call("delete", cid).rc)
        return t

    return scenario


@pytest.mark.parametrize("runtime", runtime_params())
@pytest.mark.parametrize(("spelling", "status"), [
    (("10",), "exit 7"), (("USR1",), "exit 7"), (("SIGUSR1",), "exit 7"), (("usr1",), "exit 7"),
    ((), "exit 8"), (("15",), "exit 8"), (("KILL",), "signal 9"), (("9",), "signal 9"),
], ids=["10", "USR1", "SIGUSR1", "usr1", "default", "15", "KILL", "9"])
def test_kill_signal_spellings(runtime: str, spelling: tuple[str, ...], status: str, oci: Callable[[str], Oci],
                               busybox_rootfs: Path) -> None:
    want = [("create", "0"), ("start", "0"), ("ready", "True"), ("kill", "0"), ("init status", status),
            ("state", "rc=0 status=stopped pid=0 wrong=-"), ("delete", "0")]
    _differential(runtime, oci, busybox_rootfs, signalled(spelling), want)


def kill_all(oci: Oci, rootfs: Path) -> Transcript:
    t, cid = Transcript(), "tier0-all"
    bundle = _bundle(oci, rootfs, cid, ["sh", "-c", "sleep 1000 & sleep 1000 & echo ready; wait"])
    launched, pid_file = oci.create(cid, bundle)
    t.add("create", launched.command_rc())
    init = read_pid(pid_file)
    t.add("start", oci.call("start", cid).rc)
    t.add("ready", launched.wait_output("ready\n"))
    ps = oci.call("ps", "--format", "json", cid)
    t.add("ps count", len(json.loads(ps.stdout)) if ps.rc == 0 else f"rc={ps.rc}")
    answer = oci.call("kill", "--all", cid, "KILL")
    t.note(f"kill --all: {answer.stderr} {answer.log}")
    t.add("kill --all", answer.rc)
    t.add("init status", launched.exit_of(init, timeout=10))
    t.add("state", _summary(oci, cid, bundle, init, {}))
    t.add("delete", oci.call("delete", cid).rc)
    return t


@pytest.mark.parametrize("runtime", runtime_params())
def test_kill_all(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    want = [("create", "0"), ("start", "0"), ("ready", "True"), ("ps count", "3"), ("kill --all", "0"),
            ("init status", "signal 9"), ("state", "rc=0 status=stopped pid=0 wrong=-"), ("delete", "0")]
    _differential(runtime, oci, busybox_rootfs, kill_all, want)


def joined_by_path(oci: Oci, rootfs: Path) -> Transcript:
    """Namespaces given as files kept by bind mounts, as containerd's CRI hands a pod's network namespace."""
    t, cid = Transcript(), "tier0-join"
    bundle = _bundle(oci, rootfs, cid, ["sh", "-c", "hostname; ip -4 -o addr show dev lo | grep -o '192.0.2.9/24'"])
    with bound_namespace(oci.work / "join-net", "net") as net, bound_namespace(oci.work / "join-uts", "uts") as uts:
        in_namespace(net, "net", "ip", "addr", "add", "192.0.2.9/24", "dev", "lo")
        in_namespace(uts, "uts", "hostname", "bound-uts")
        config_path = bundle / "config.json"
        config = json.loads(config_path.read_text())
        config.pop("hostname", None)  # the joined UTS namespace keeps its own
        config["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                                         {"type": "network", "path": str(net)}, {"type": "uts", "path": str(uts)}]
        config_path.write_text(json.dumps(config))
        launched, pid_file = oci.create(cid, bundle)
        t.add("create", launched.command_rc())
        init = read_pid(pid_file)
        t.add("start", oci.call("start", cid).rc)
        t.add("init status", launched.exit_of(init, timeout=10))
        t.add("stdout", repr(launched.output()))
        t.add("delete", oci.call("delete", cid).rc)
        # A path that is no namespace is refused by create.
        config["linux"]["namespaces"][3]["path"] = str(bundle / "config.json")
        config_path.write_text(json.dumps(config))
        refused, _pid_file = oci.create(cid, bundle)
        t.add("create with a plain file", refused.command_rc())
        t.add("state after", oci.state(cid)[0].rc)
    return t


@pytest.mark.parametrize("runtime", runtime_params())
def test_namespaces_joined_by_path(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    want = [("create", "0"), ("start", "0"), ("init status", "exit 0"), ("stdout", repr("bound-uts\n192.0.2.9/24\n")),
            ("delete", "0"), ("create with a plain file", "1"), ("state after", "1")]
    _differential(runtime, oci, busybox_rootfs, joined_by_path, want)


def kill_created(oci: Oci, rootfs: Path) -> Transcript:
    t, cid = Transcript(), "tier0-kc"
    bundle = _bundle(oci, rootfs, cid, ["sh", "-c", "echo never"])
    launched, pid_file = oci.create(cid, bundle)
    t.add("create", launched.command_rc())
    init = read_pid(pid_file)
    t.add("kill", oci.call("kill", cid, "SIGKILL").rc)
    t.add("init status", launched.exit_of(init, timeout=10))
    t.add("state", _summary(oci, cid, bundle, init, {}))
    t.add("start", oci.call("start", cid).rc)
    t.add("delete", oci.call("delete", cid).rc)
    t.add("stdout", repr(launched.output()))
    return t


@pytest.mark.parametrize("runtime", runtime_params())
def test_kill_created(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    want = [("create", "0"), ("kill", "0"), ("init status", "signal 9"),
            ("state", "rc=0 status=stopped pid=0 wrong=-"), ("start", "1"), ("delete", "0"), ("stdout", "''")]
    _differential(runtime, oci, busybox_rootfs, kill_created, want)


# --- create that fails: the message podman maps to 127 and 126 (oci.md §4.10) ------------------------


def failed_create(args: list[str], message: str) -> Scenario:
    def scenario(oci: Oci, rootfs: Path) -> Transcript:
        t, cid = Transcript(), "tier0-bad"
        bundle = _bundle(oci, rootfs, cid, args)
        launched, _ = oci.create(cid, bundle)
        answer = launched.answer()
        t.note(f"create: {answer.stderr} {answer.log}")
        t.add("create", answer.rc)
        t.add("message", answer.says(message))
        t.add("error logged as json", bool(answer.errors()))
        t.add("state", _summary(oci, cid, bundle, 0, {}))
        t.add("delete --force", oci.call("delete", "--force", cid).rc)
        return t

    return scenario


@pytest.mark.parametrize("runtime", runtime_params())
@pytest.mark.parametrize(("args", "message"), [
    (["/nonexistent"], "no such file or directory"),
    (["/etc/passwd"], "permission denied"),
], ids=["missing", "not-executable"])
def test_failed_create(runtime: str, args: list[str], message: str, oci: Callable[[str], Oci],
                       busybox_rootfs: Path) -> None:
    want = [("create", "1"), ("message", "True"), ("error logged as json", "True"),
            ("state", "rc=1 no-such-container=True"), ("delete --force", "0")]
    _differential(runtime, oci, busybox_rootfs, failed_create(args, message), want)


def bundle_without_config(oci: Oci, _rootfs: Path) -> Transcript:
    t, cid = Transcript(), "tier0-empty"
    empty = oci.work / "empty-bundle"
    empty.mkdir()
    launched, _ = oci.create(cid, empty)
    t.add("create", launched.command_rc())
    t.add("state", oci.call("state", cid).rc)
    return t


@pytest.mark.parametrize("runtime", runtime_params())
def test_bundle_without_config(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    _differential(runtime, oci, busybox_rootfs, bundle_without_config, [("create", "1"), ("state", "1")])


# --- update, --version, features ---------------------------------------------------------------------


def _pids_max(pid: int) -> str:
    """pids.max of the v1 pids cgroup of ``pid``."""
    with open(f"/proc/{pid}/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "pids" in controllers.split(","):
                with open(f"/sys/fs/cgroup/pids{path}/pids.max") as limit:
                    return limit.read().strip()
    return "no pids cgroup"


def update_resources(oci: Oci, rootfs: Path) -> Transcript:
    t, cid = Transcript(), "tier0-upd"
    bundle = _bundle(oci, rootfs, cid, ["sh", "-c", LOOP])
    launched, pid_file = oci.create(cid, bundle)
    t.add("create", launched.command_rc())
    init = read_pid(pid_file)
    t.add("start", oci.call("start", cid).rc)
    resources = oci.work / "resources.json"
    resources.write_text(json.dumps({"pids": {"limit": 42}}))
    answer = oci.call("update", f"--resources={resources}", cid)
    t.note(f"update: {answer.stderr} {answer.log}")
    t.add("update", answer.rc)
    t.add("pids.max", _pids_max(init))
    t.add("delete --force", oci.call("delete", "--force", cid).rc)
    t.add("init status", launched.exit_of(init, timeout=10))
    return t


@pytest.mark.parametrize("runtime", runtime_params())
def test_update_resources(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    want = [("create", "0"), ("start", "0"), ("update", "0"), ("pids.max", "42"), ("delete --force", "0"),
            ("init status", "signal 9")]
    _differential(runtime, oci, busybox_rootfs, update_resources, want)


def version_and_features(oci: Oci, _rootfs: Path) -> Transcript:
    t = Transcript()
    version = oci.call("--version")
    t.add("--version", f"rc={version.rc} says-version={'version' in version.stdout.lower()}")
    features = oci.call("features")
    try:
        answer = json.loads(features.stdout)
    except ValueError:
        answer = {}
    t.add("features", f"rc={features.rc} keys={sorted({'ociVersionMin', 'ociVersionMax'} & set(answer))}")
    return t


@pytest.mark.parametrize("runtime", runtime_params())
def test_version_and_features(runtime: str, oci: Callable[[str], Oci], busybox_rootfs: Path) -> None:
    want = [("--version", "rc=0 says-version=True"), ("features", "rc=0 keys=['ociVersionMax', 'ociVersionMin']")]
    _differential(runtime, oci, busybox_rootfs, version_and_features, want)
