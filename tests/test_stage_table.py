"""The start table (lxcframe/stages.py) and the order of builtin plugins within its stages, pinned.

Golden lists are copied here on purpose: a change to the start's order, or to where a builtin runs in a
stage, must change this file too. The driver is shown to walk the table in its order on both sides, and a
real start to fire every stage's implementations in the pinned order.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from lxcframe import driver
from lxcframe.child import _InitChild
from lxcframe.errors import StageError
from lxcframe.hooks import PROJECT_NAME, hookimpl
from lxcframe.monitor import _MonitorCore
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins import BUILTIN_PLUGINS
from lxcframe.stages import (
    AFTER_START,
    CHILD,
    CHILD_WALK,
    HOST,
    HOST_AFTER_START,
    HOST_START,
    PLUGIN_ORDER,
    START_STAGES,
    START_TABLE,
    Barrier,
    CoreStep,
    Stage,
)

# --- the table ---------------------------------------------------------------------------------------

#: (kind, name, side, hook or barrier bound to)
EXPECTED_TABLE = [
    ("stage", "validate", "host", "lxcframe_validate", ""),
    ("stage", "plan", "host", "lxcframe_plan", ""),
    ("step", "starting", "host", "", ""),
    ("stage", "pre-start", "host", "lxcframe_pre_start", ""),
    ("step", "fork", "host", "", ""),
    ("step", "clone", "child", "", ""),
    ("step", "unshare-user", "child", "", ""),
    ("barrier", "created", "both", "", ""),
    ("stage", "userns", "host", "lxcframe_child_created", "created"),
    ("stage", "cgroup", "host", "lxcframe_attach_cgroup", "created"),
    ("step", "unshare", "child", "", ""),
    ("barrier", "namespaces", "both", "", ""),
    ("stage", "network", "host", "lxcframe_setup_network", "namespaces"),
    ("stage", "child-network", "child", "lxcframe_child_network", ""),
    ("step", "private-mounts", "child", "", ""),
    ("stage", "pre-mount", "child", "lxcframe_child_pre_mount", ""),
    ("stage", "rootfs", "child", "lxcframe_child_mount_rootfs", ""),
    ("step", "open-rootfs", "child", "", ""),
    ("step", "become-root", "child", "", ""),
    ("stage", "mounts", "child", "lxcframe_child_mount_filesystems", ""),
    ("stage", "devices", "child", "lxcframe_child_devices", ""),
    ("stage", "pre-pivot", "child", "lxcframe_child_pre_pivot", ""),
    ("step", "pivot", "child", "", ""),
    ("barrier", "start-host", "both", "", ""),
    ("stage", "start-host", "host", "lxcframe_start_host", "start-host"),
    ("stage", "security", "child", "lxcframe_child_security", ""),
    ("stage", "exec", "child", "lxcframe_child_pre_exec", ""),
    ("step", "close-descriptors", "child", "", ""),
    ("step", "enter-cwd", "child", "", ""),
    ("step", "final-ids", "child", "", ""),
    ("step", "exec", "child", "", ""),
    ("barrier", "exec", "both", "", ""),
    ("step", "running", "host", "", ""),
    ("stage", "post-start", "host", "lxcframe_post_start", ""),
    ("step", "wait", "host", "", ""),
    ("stage", "stop", "host", "lxcframe_stopped", ""),
    ("step", "unwind", "host", "", ""),
    ("stage", "post-stop", "host", "lxcframe_post_stop", ""),
]


def row(entry: Stage | CoreStep | Barrier) -> tuple[str, str, str, str, str]:
    if isinstance(entry, Stage):
        return ("stage", entry.name, entry.side, entry.hook, entry.barrier)
    if isinstance(entry, CoreStep):
        return ("step", entry.name, entry.side, "", "")
    return ("barrier", entry.name, entry.side, "", "")


def test_start_table_is_golden() -> None:
    assert [row(entry) for entry in START_TABLE] == EXPECTED_TABLE


def test_what_each_side_walks_and_what_counts_as_started() -> None:
    assert [row(e)[1] for e in HOST_START] == [
        "starting", "pre-start", "fork", "created", "userns", "cgroup", "namespaces", "network", "start-host",
        "start-host", "exec"]
    assert [row(e)[1] for e in HOST_AFTER_START] == ["running", "post-start", "wait", "stop", "unwind", "post-stop"]
    assert [row(e)[1] for e in CHILD_WALK] == [
        "clone", "unshare-user", "created", "unshare", "namespaces", "child-network", "private-mounts", "pre-mount",
        "rootfs", "open-rootfs", "become-root", "mounts", "devices", "pre-pivot", "pivot", "start-host", "security",
        "exec", "close-descriptors", "enter-cwd", "final-ids", "exec"]
    assert {"post-start", "stop", "post-stop"} == AFTER_START
    # Only stages after the start log their failure; only post-start stops the container for it.
    assert {(s.name, s.logged_as, s.stops_on_failure) for s in START_STAGES if s.logged_as} == {
        ("post-start", "post-start failed, stopping", True), ("stop", "stop hook failed", False),
        ("post-stop", "post-stop failed", False)}
    assert [(s.name, s.unanswered) for s in START_STAGES if s.firstresult] == [
        ("rootfs", "no plugin mounted the rootfs")]


def test_host_stages_at_a_barrier_follow_it() -> None:
    """A host stage bound to a barrier comes right after it (or after another stage bound to it)."""
    waiting = ""
    for entry in START_TABLE:
        if isinstance(entry, Barrier):
            waiting = entry.name if entry.child_waits else ""
        elif isinstance(entry, Stage) and entry.barrier:
            assert entry.side == HOST and entry.barrier == waiting, entry
        else:
            waiting = ""


@pytest.mark.parametrize("stage", START_STAGES, ids=lambda s: s.name)
def test_stage_is_a_hookspec_of_its_side_with_its_firstresult(stage: Stage) -> None:
    module = importlib.import_module({HOST: "lxcframe.hooks.host", CHILD: "lxcframe.hooks.child"}[stage.side])
    spec = getattr(module, stage.hook)
    assert bool(getattr(spec, f"{PROJECT_NAME}_spec").get("firstresult")) is stage.firstresult


def test_each_side_has_a_method_for_each_of_its_core_steps() -> None:
    cores = {HOST: _MonitorCore, CHILD: _InitChild}
    missing = [(step.side, step.method) for step in START_TABLE
               if isinstance(step, CoreStep) and not callable(getattr(cores[step.side], step.method, None))]
    assert missing == []


# --- the driver walks the table ----------------------------------------------------------------------


STEP_METHODS = {entry.method for entry in START_TABLE if isinstance(entry, CoreStep)}


class Journal:
    """A plugin implementing every stage's hook and a core of either side, noting each call in one list."""

    def __init__(self, notes: list[str], fail_at: str = "") -> None:
        self.notes = notes
        self.fail_at = fail_at
        self.plugins = Plugins(environ={}, autoload=False, disable=[n for n in BUILTIN_PLUGINS if n != "core"],
                               extra=[("journal", self)])
        self.plugins.pm.unregister(name="core")  # essential, so not disabled; its hooks want a real start

    def __getattr__(self, name: str) -> Any:
        # A core step's method: noted (and failing if asked to).
        if name not in STEP_METHODS:
            raise AttributeError(name)

        def step() -> None:
            self.notes.append(f"step {name}")
            if name == self.fail_at:
                raise OSError(28, "No space left on device")
        return step

    def arguments(self) -> dict[str, Any]:
        return {"ctx": None, "pid": 1, "status": 0}

    def wait_for(self, barrier: Barrier) -> None:
        self.notes.append(f"wait for {barrier.name}")

    def release(self, barrier: Barrier) -> None:
        self.notes.append(f"release {barrier.name}")

    def wait_go(self, barrier: Barrier) -> None:
        self.notes.append(f"wait go {barrier.name}")

    def failed_after_start(self, stage: Stage, err: StageError) -> None:
        self.notes.append(f"logged {stage.name}: {err.message}")

    def _hook(self, name: str) -> Any:
        self.notes.append(f"hook {name}")
        return "/mnt" if name == "lxcframe_child_mount_rootfs" else None


def _journal_hook(hook: str) -> Any:
    def implementation(self: Journal) -> Any:
        if hook == self.fail_at:
            raise RuntimeError("refused")
        return self._hook(hook)
    implementation.__name__ = hook
    return hookimpl(implementation)


for _stage in START_STAGES:
    setattr(Journal, _stage.hook, _journal_hook(_stage.hook))


def test_the_monitor_walks_its_side_in_table_order() -> None:
    notes: list[str] = []
    journal = Journal(notes)
    driver.walk_host_start(journal)
    driver.walk_host_after_start(journal)
    assert notes == [
        "step starting", "hook lxcframe_pre_start", "step fork",
        "wait for created", "hook lxcframe_child_created", "hook lxcframe_attach_cgroup", "release created",
        "wait for namespaces", "hook lxcframe_setup_network", "release namespaces",
        "wait for start-host", "hook lxcframe_start_host", "release start-host",
        "wait for exec",  # the exec handshake: nothing to release
        "step running", "hook lxcframe_post_start", "step wait", "hook lxcframe_stopped", "step unwind",
        "hook lxcframe_post_stop"]


def test_after_the_start_a_stage_failure_goes_to_the_core_and_the_walk_goes_on() -> None:
    notes: list[str] = []
    driver.walk_host_after_start(Journal(notes, fail_at="lxcframe_post_start"))
    assert notes == ["step running", "logged post-start: refused", "step wait", "hook lxcframe_stopped",
                     "step unwind", "hook lxcframe_post_stop"]


def test_the_child_walks_its_side_in_table_order() -> None:
    notes: list[str] = []
    driver.ChildWalk(Journal(notes)).run()
    assert notes == [
        "step clone", "step unshare_user", "wait go created", "step unshare", "wait go namespaces",
        "hook lxcframe_child_network", "step private_mounts", "hook lxcframe_child_pre_mount",
        "hook lxcframe_child_mount_rootfs", "step open_rootfs", "step become_root",
        "hook lxcframe_child_mount_filesystems", "hook lxcframe_child_devices", "hook lxcframe_child_pre_pivot",
        "step pivot", "wait go start-host", "hook lxcframe_child_security", "hook lxcframe_child_pre_exec",
        "step close_descriptors", "step enter_cwd", "step final_ids", "step exec"]


def test_a_core_step_failure_in_the_child_is_named_after_the_step() -> None:
    notes: list[str] = []
    walk = driver.ChildWalk(Journal(notes, fail_at="pivot"))
    with pytest.raises(StageError) as info:
        walk.run()
    assert (info.value.stage, info.value.plugin, info.value.message, info.value.errno) == (
        "pivot", None, "No space left on device", 28)
    assert notes[-1] == "step pivot" and walk.at == "pivot"


# --- the order of builtin plugins within each stage ----------------------------------------------------

#: hook -> builtin implementations in the order pluggy calls them (all builtins enabled).
EXPECTED_BUILTIN_ORDER = {
    "lxcframe_validate": ["procfs", "sysctl", "namespaces", "netns", "seccomp", "idmap", "cgroup", "apparmor", "caps",
                          "mounts", "core"],
    "lxcframe_plan": ["console", "procfs", "sysctl", "prlimit", "namespaces", "netns", "seccomp", "keyring", "hooks",
                      "idmap", "cgroup", "apparmor", "caps", "devices", "sysfs", "mounts", "core"],
    "lxcframe_pre_start": ["console", "sysctl", "namespaces", "netns", "hooks", "cgroup", "apparmor"],
    "lxcframe_child_created": ["idmap"],
    "lxcframe_attach_cgroup": ["cgroup"],
    "lxcframe_setup_network": ["netns", "hooks"],
    "lxcframe_child_network": ["namespaces", "netns"],
    "lxcframe_child_pre_mount": ["hooks", "core"],
    "lxcframe_child_mount_rootfs": ["core"],
    "lxcframe_child_mount_filesystems": ["sysfs", "cgroup", "mounts"],
    "lxcframe_child_devices": ["devices", "console"],
    "lxcframe_child_pre_pivot": ["keyring", "apparmor", "mounts", "procfs", "sysctl", "seccomp", "hooks", "core",
                                 "mount-injection", "prlimit"],
    "lxcframe_start_host": ["hooks"],
    "lxcframe_child_security": ["apparmor", "caps", "seccomp"],
    "lxcframe_child_pre_exec": ["core", "console", "hooks"],
    "lxcframe_post_start": ["console"],
    "lxcframe_stopped": ["console", "hooks"],
    "lxcframe_post_stop": ["hooks", "ephemeral"],
    # Not a stage of the start, but ordered as the security stage is.
    "lxcframe_attach_child": ["apparmor", "core", "caps", "seccomp"],
}

#: Marks a builtin keeps, each because pluggy's own meaning is what is meant.
KEPT_MARKS = {
    # The default rootfs backend of a firstresult hook: any other backend answers before it.
    ("core", "lxcframe_child_mount_rootfs"): {"trylast": True},
}


@pytest.fixture(scope="module")
def builtins() -> Plugins:
    return Plugins(environ={}, autoload=False)


def call_order(plugins: Plugins, hook: str) -> list[str]:
    return [impl.plugin_name for impl in reversed(getattr(plugins.hook, hook).get_hookimpls())]


def test_every_start_stage_and_attach_child_is_pinned() -> None:
    assert list(EXPECTED_BUILTIN_ORDER) == [*(s.hook for s in START_STAGES), "lxcframe_attach_child"]


@pytest.mark.parametrize("hook", list(EXPECTED_BUILTIN_ORDER))
def test_builtin_order_within_a_stage_is_golden(builtins: Plugins, hook: str) -> None:
    assert call_order(builtins, hook) == EXPECTED_BUILTIN_ORDER[hook]


@pytest.mark.parametrize("hook", list(PLUGIN_ORDER))
def test_plugin_order_places_its_plugins_first_and_last_as_listed(builtins: Plugins, hook: str) -> None:
    order = call_order(builtins, hook)
    first = [p.plugin for p in PLUGIN_ORDER[hook] if p.where == "first"]
    last = [p.plugin for p in PLUGIN_ORDER[hook] if p.where == "last"]
    assert order[:len(first)] == first
    assert order[len(order) - len(last):] == last
    impls = {impl.plugin_name: impl for impl in getattr(builtins.hook, hook).get_hookimpls()}
    for placed in PLUGIN_ORDER[hook]:
        assert placed.why, placed
        assert (impls[placed.plugin].tryfirst, impls[placed.plugin].trylast) == (
            placed.where == "first", placed.where == "last")


def builtin_marks() -> dict[tuple[str, str], dict[str, bool]]:
    """Every tryfirst/trylast a builtin module marks on its own functions: (plugin, hook) -> marks."""
    found = {}
    for name, module_name in BUILTIN_PLUGINS.items():
        module = importlib.import_module(module_name)
        for attribute in dir(module):
            opts = getattr(getattr(module, attribute, None), f"{PROJECT_NAME}_impl", None)
            if isinstance(opts, dict):
                marks = {key: True for key in ("tryfirst", "trylast") if opts.get(key)}
                if marks:
                    found[(name, opts.get("specname") or attribute)] = marks
    return found


def test_builtins_carry_no_order_marks_of_their_own() -> None:
    """Order is the table's: a builtin marking itself tryfirst/trylast (but the kept ones) fails here."""
    assert builtin_marks() == KEPT_MARKS


def test_a_mark_added_to_a_builtin_is_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the tests above would see if mounts marked its hook of the mounts stage tryfirst."""
    mounts = importlib.import_module("lxcframe.plugins.mounts")
    marked = dict(getattr(mounts.lxcframe_child_mount_filesystems, f"{PROJECT_NAME}_impl"), tryfirst=True)
    monkeypatch.setattr(mounts.lxcframe_child_mount_filesystems, f"{PROJECT_NAME}_impl", marked)
    assert builtin_marks() == {**KEPT_MARKS, ("mounts", "lxcframe_child_mount_filesystems"): {"tryfirst": True}}
    assert call_order(Plugins(environ={}, autoload=False), "lxcframe_child_mount_filesystems") == [
        "sysfs", "mounts", "cgroup"]


def test_the_table_overrides_a_builtins_own_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    seccomp = importlib.import_module("lxcframe.plugins.seccomp")
    marked = dict(getattr(seccomp.lxcframe_child_security, f"{PROJECT_NAME}_impl"), tryfirst=True)
    monkeypatch.setattr(seccomp.lxcframe_child_security, f"{PROJECT_NAME}_impl", marked)
    assert call_order(Plugins(environ={}, autoload=False), "lxcframe_child_security") == ["apparmor", "caps",
                                                                                            "seccomp"]


class Confiner:
    """A third-party plugin of the security stage: unmarked, then marked."""

    @hookimpl
    def lxcframe_child_security(self) -> None:
        pass


class FirstConfiner:
    @hookimpl(tryfirst=True)
    def lxcframe_child_security(self) -> None:
        pass


def test_third_party_plugins_keep_their_marks() -> None:
    plugins = Plugins(environ={}, autoload=False, extra=[("confiner", Confiner()), ("first", FirstConfiner())])
    assert call_order(plugins, "lxcframe_child_security") == ["first", "apparmor", "confiner", "caps", "seccomp"]


# --- a real start ------------------------------------------------------------------------------------


class Recorder:
    """Implements every stage's hook with no mark: registered last, it runs before the unmarked builtins."""


def _recorder_hook(hook: str) -> Any:
    def implementation(self: Recorder) -> Any:
        return [] if hook == "lxcframe_validate" else None
    implementation.__name__ = hook
    return hookimpl(implementation)


for _stage in START_STAGES:
    setattr(Recorder, _stage.hook, _recorder_hook(_stage.hook))


def spy_on_every_implementation(plugins: Plugins, fd: int) -> None:
    """Each start stage's implementations write ``HOOK PLUGIN`` to ``fd`` when called (host and child alike:
    the descriptor is opened before any fork, so the child still reaches it after pivot_root)."""
    for stage in START_STAGES:
        for impl in getattr(plugins.hook, stage.hook).get_hookimpls():
            assert not (impl.hookwrapper or impl.wrapper)
            impl.function = _noting(impl.function, fd, f"{stage.hook} {impl.plugin_name}\n".encode())


def _noting(function: Any, fd: int, note: bytes) -> Any:
    def noted(*args: Any, **kwargs: Any) -> Any:
        os.write(fd, note)
        return function(*args, **kwargs)
    return noted


@pytest.mark.container
def test_a_real_start_calls_every_implementation_in_table_order(make_container, tmp_path) -> None:
    log = tmp_path / "calls"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        plugins = Plugins(extra=[("recorder", Recorder())])
        spy_on_every_implementation(plugins, fd)
        container = make_container("tableorder", plugins=plugins)
        assert container.execute(["/bin/true"]) == 0
    finally:
        os.close(fd)
    # The recorder comes after the builtins placed first and before all others (the rootfs stage goes on
    # past its answer of None to core's, marked trylast).
    expected = []
    for stage in START_STAGES:
        order = EXPECTED_BUILTIN_ORDER[stage.hook]
        firsts = [p.plugin for p in PLUGIN_ORDER.get(stage.hook, ()) if p.where == "first"]
        expected += [f"{stage.hook} {plugin}" for plugin in [*firsts, "recorder", *order[len(firsts):]]]
    assert log.read_text().splitlines() == expected


# --- docs/plugins.md shows both tables ---------------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def doc_section(heading: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"### {heading}\n")
    return text[start:text.index("\n### ", start + 1)]


def test_the_documented_start_table_is_the_table() -> None:
    rows = re.findall(r"^\| ([^|]+) \| [^|]+ \| (host|child|both)\b[^|]* \|$", doc_section("The start, stage by stage"),
                      re.MULTILINE)
    kinds = {"**": "barrier", "*": "step"}
    documented = []
    for cell, side in rows:
        kind = next((kind for mark, kind in kinds.items() if cell.startswith(mark)), "stage")
        documented.append((kind, cell.strip("*"), side))
    assert documented == [(kind, name, side) for kind, name, side, _, _ in EXPECTED_TABLE]


def test_the_documented_order_within_stages_is_plugin_order() -> None:
    rows = re.findall(r"^\| `(lxcframe_\w+)` \|([^|]*)\|([^|]*)\| [^|]+ \|$", doc_section("Order within a stage"),
                      re.MULTILINE)

    def names(cell: str) -> list[str]:
        return [name.strip() for name in cell.split(",") if name.strip()]

    assert {hook: (names(first), names(last)) for hook, first, last in rows} == {
        hook: ([p.plugin for p in placed if p.where == "first"], [p.plugin for p in placed if p.where == "last"])
        for hook, placed in PLUGIN_ORDER.items()}
