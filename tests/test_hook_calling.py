"""Hooks are called by pluggy itself: wrappers (old- and new-style) run around the others, firstresult hooks
stop at the first result, a failure names the plugin that raised it, every call can be traced, and log lines
written while a plugin's implementation runs name that plugin.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from lxcframe import state as st
from lxcframe.errors import ContainerError, StageError
from lxcframe.hooks import hookimpl
from lxcframe.log import get_logger
from lxcframe.plugin_manager import TRACE_ENV, Plugins
from lxcframe.stage_runner import call_hook

from .conftest import run_cli_with_site
from .test_plugins import make_distribution

# --- plugins that record what they see ---------------------------------------------------------------------


class Journaling:
    """A plugin that appends what it sees to a journal the test reads."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal


class OldStyleWrapper(Journaling):
    @hookimpl(hookwrapper=True)
    def lxcframe_pre_start(self, ctx: Any) -> Generator[None, pluggy.Result[Any], None]:
        self.journal.append("old-style enters")
        outcome = yield
        self.journal.append(f"old-style leaves ({'raised' if outcome.exception else 'ok'})")


class NewStyleWrapper(Journaling):
    @hookimpl(wrapper=True)
    def lxcframe_pre_start(self, ctx: Any) -> Generator[None, Any, Any]:
        self.journal.append("new-style enters")
        try:
            result = yield
        except Exception as err:
            self.journal.append(f"new-style saw {err}")
            raise
        self.journal.append("new-style leaves")
        return result


class TryFirst(Journaling):
    @hookimpl(tryfirst=True)
    def lxcframe_pre_start(self, ctx: Any) -> None:
        self.journal.append("tryfirst")


class TryLast(Journaling):
    @hookimpl(trylast=True)
    def lxcframe_pre_start(self, ctx: Any) -> None:
        self.journal.append("trylast")


class Exploder:
    @hookimpl
    def lxcframe_start_host(self, ctx: Any, pid: int) -> None:
        raise OSError(28, "No space left on device", "/var/lib/widget")


class FirstAnswer(Journaling):
    @hookimpl(tryfirst=True)
    def lxcframe_is_frozen(self, state: Any) -> bool | None:
        self.journal.append("first")
        return True


class LaterAnswer(Journaling):
    @hookimpl(trylast=True)
    def lxcframe_is_frozen(self, state: Any) -> bool | None:
        self.journal.append("later")
        return False


# --- calling through pluggy ----------------------------------------------------------------------------------


@pytest.mark.container
def test_wrappers_run_around_the_other_implementations_of_a_start_hook(make_container) -> None:
    journal: list[str] = []
    plugins = Plugins(extra=[
        ("tryfirst", TryFirst(journal)), ("oldwrap", OldStyleWrapper(journal)),
        ("newwrap", NewStyleWrapper(journal)), ("trylast", TryLast(journal)),
    ])
    container = make_container("hcwrap", plugins=plugins)
    assert container.execute(["/bin/true"]) == 0
    # The last registered wrapper is outermost; tryfirst and trylast order the plain implementations.
    assert journal == ["new-style enters", "old-style enters", "tryfirst", "trylast",
                       "old-style leaves (ok)", "new-style leaves"]


class PreStartFailure:
    @hookimpl
    def lxcframe_pre_start(self, ctx: Any) -> None:
        raise RuntimeError("widget refused")


@pytest.mark.container
def test_a_failure_inside_wrappers_names_the_plugin_that_raised(make_container) -> None:
    journal: list[str] = []
    plugins = Plugins(extra=[("oldwrap", OldStyleWrapper(journal)), ("newwrap", NewStyleWrapper(journal)),
                             ("refuser", PreStartFailure())])
    container = make_container("hcwrapfail", plugins=plugins)
    with pytest.raises(StageError) as info:
        container.execute(["/bin/true"])
    assert (info.value.stage, info.value.plugin, info.value.message) == ("pre-start", "refuser", "widget refused")
    assert journal == ["new-style enters", "old-style enters", "old-style leaves (raised)",
                       "new-style saw widget refused"]
    assert container.state == st.STOPPED


@pytest.mark.container
@pytest.mark.parametrize("mode", ["start", "execute"])
def test_a_host_hook_failure_names_its_plugin_and_unwinds_the_start(make_container, mode: str) -> None:
    container = make_container("hcboom" + mode[0], plugins=Plugins(extra=[("exploder", Exploder())]))
    with pytest.raises(StageError) as info:
        container.start(["/bin/sleep", "30"]) if mode == "start" else container.execute(["/bin/sleep", "30"])
    err = info.value
    assert (err.stage, err.plugin, err.errno) == ("start-host", "exploder", 28)
    assert err.message == "No space left on device: /var/lib/widget"
    assert str(err) == ("start failed at stage 'start-host' (plugin 'exploder'): "
                        "No space left on device: /var/lib/widget")
    assert container.state == st.STOPPED
    assert st.read_state(container.lxcpath, container.name) is None
    # make_container's teardown checks the host: no cgroup, link, mount or process left.


class WrapperFailingItself:
    @hookimpl(wrapper=True)
    def lxcframe_destroy(self, name: str, lxcpath: str, config: Any) -> Generator[None, Any, Any]:
        try:
            return (yield)
        except ValueError as err:
            raise RuntimeError(f"teardown of the wrapper failed after {err}") from err


class DestroyFailure:
    @hookimpl
    def lxcframe_destroy(self, name: str, lxcpath: str, config: Any) -> None:
        raise ValueError("volume busy")


class DestroyRefusal:
    def __init__(self) -> None:
        self.error = ContainerError("widget: still in use")

    @hookimpl
    def lxcframe_destroy(self, name: str, lxcpath: str, config: Any) -> None:
        raise self.error


def test_failure_outside_the_start_names_the_plugin_and_is_no_failed_start() -> None:
    plugins = Plugins(environ={}, extra=[("volumes", DestroyFailure())])
    with pytest.raises(StageError) as info:
        call_hook(plugins, "lxcframe_destroy", name="c1", lxcpath="/nonexistent", config=None)
    assert str(info.value) == "stage 'destroy' failed (plugin 'volumes'): volume busy"
    assert isinstance(info.value.__cause__, ValueError)


def test_a_wrapper_raising_its_own_error_is_named() -> None:
    # Registered after it, the failing plain implementation runs inside the wrapper: its error is the
    # one the wrapper sees, but the wrapper raises one of its own, which names the wrapper.
    plugins = Plugins(environ={}, extra=[("volumes", DestroyFailure()), ("wrapper", WrapperFailingItself())])
    with pytest.raises(StageError) as info:
        call_hook(plugins, "lxcframe_destroy", name="c1", lxcpath="/nonexistent", config=None)
    assert (info.value.plugin, info.value.message) == ("wrapper", "teardown of the wrapper failed after volume busy")


class PassingWrapper:
    @hookimpl(wrapper=True)
    def lxcframe_destroy(self, name: str) -> Generator[None, Any, Any]:  # needs less than the others
        return (yield)


def test_an_error_passing_through_a_wrapper_is_not_the_wrappers() -> None:
    # A call missing an argument the wrapper does not take: pluggy's own error, raised for the implementation
    # inside and thrown into the wrapper, which lets it pass.
    plugins = Plugins(environ={}, extra=[("volumes", DestroyFailure()), ("wrapper", PassingWrapper())])
    with pytest.warns(UserWarning, match="'config'"), pytest.raises(StageError) as info:
        call_hook(plugins, "lxcframe_destroy", name="c1", lxcpath="/nonexistent")
    assert (info.value.plugin, info.value.message) == (None, "hook call must provide argument 'config'")


class Delegating:
    """Its destroy calls another hook, whose implementation in another plugin fails."""

    plugins: Plugins

    @hookimpl
    def lxcframe_destroy(self, name: str, lxcpath: str, config: Any) -> None:
        self.plugins.hook.lxcframe_stop_requested(ctx=None)


class StopFailure:
    @hookimpl
    def lxcframe_stop_requested(self, ctx: Any) -> None:
        raise ValueError("inner refusal")


def test_the_plugin_whose_code_raised_is_named_not_the_one_that_called_it() -> None:
    delegating = Delegating()
    plugins = Plugins(environ={}, extra=[("delegating", delegating), ("stopper", StopFailure())])
    delegating.plugins = plugins
    with pytest.raises(StageError) as info:
        call_hook(plugins, "lxcframe_destroy", name="c1", lxcpath="/nonexistent", config=None)
    assert (info.value.plugin, info.value.message) == ("stopper", "inner refusal")


def test_a_plugins_own_clear_error_passes_outside_the_start() -> None:
    refusal = DestroyRefusal()
    plugins = Plugins(environ={}, extra=[("widget", refusal)])
    with pytest.raises(ContainerError) as info:
        call_hook(plugins, "lxcframe_destroy", name="c1", lxcpath="/nonexistent", config=None)
    assert info.value is refusal.error


def test_firstresult_hook_stops_at_the_first_result() -> None:
    journal: list[str] = []
    plugins = Plugins(environ={}, extra=[("later", LaterAnswer(journal)), ("first", FirstAnswer(journal))])
    assert call_hook(plugins, "lxcframe_is_frozen", firstresult=True, state=None) == [True]
    assert journal == ["first"]


def test_firstresult_must_match_the_hookspec() -> None:
    plugins = Plugins(environ={})
    with pytest.raises(TypeError, match="lxcframe_info is not a firstresult hook"):
        call_hook(plugins, "lxcframe_info", firstresult=True, state=None)
    with pytest.raises(TypeError, match="lxcframe_is_frozen is a firstresult hook"):
        call_hook(plugins, "lxcframe_is_frozen", state=None)


@pytest.mark.container
def test_firstresult_answer_of_a_plugin_decides_a_running_containers_state(make_container) -> None:
    journal: list[str] = []
    plugins = Plugins(extra=[("later", LaterAnswer(journal)), ("first", FirstAnswer(journal))])
    container = make_container("hcfirst", plugins=plugins)
    container.start(["/bin/sleep", "30"])
    try:
        # Only the tryfirst plugin is asked: the cgroup drivers' own answer (not frozen) never comes.
        assert container.state == st.FROZEN
        assert set(journal) == {"first"}
    finally:
        container.stop(kill=True)


# --- tracing ------------------------------------------------------------------------------------------------------


def test_trace_follows_the_argument_or_the_environment() -> None:
    assert Plugins(environ={}).trace is False
    assert Plugins(environ={TRACE_ENV: "1"}).trace is True
    assert Plugins(environ={TRACE_ENV: "0"}).trace is False
    assert Plugins(environ={TRACE_ENV: "1"}, trace=False).trace is False
    plugins = Plugins(environ={}, trace=True)
    plugins.trace = False
    assert plugins.trace is False


@pytest.fixture
def chatty_site(tmp_path: Path) -> Path:
    """An installed third-party plugin that logs from a host hook, through both of the project's loggers."""
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "chatty-plug", "1.0", "chatty_plug", """
        from lxcframe.hooks import hookimpl
        from lxcframe.log import get_logger

        @hookimpl
        def lxcframe_pre_start(ctx):
            get_logger("chatty").info("widget prepared", size=3)
            ctx.log.info("context logger used")
        """, "chatty")
    return site


TRACE_LINE = re.compile(r"^lxcframe (?P<container>\S+) \d{14}\.\d{3} INFO +(?P<logger>\S+) - hook implementation "
                        r"hook=(?P<hook>\w+) plugin=(?P<plugin>[\w-]+) ms=(?P<ms>\d+\.\d{3})")
CALL_LINE = re.compile(r"^lxcframe \S+ \S+ INFO +\S+ - hook call hook=(?P<hook>\w+) plugins=(?P<plugins>\S+) "
                       r"ms=(?P<ms>\d+\.\d{3})")


def traced(stderr: str) -> list[dict[str, str]]:
    return [m.groupdict() for m in map(TRACE_LINE.match, stderr.splitlines()) if m]


@pytest.mark.container
def test_trace_plugins_shows_every_hook_with_plugin_and_duration(make_container, chatty_site: Path) -> None:
    container = make_container("hctrace")
    result = run_cli_with_site(chatty_site, "-P", container.lxcpath, "--trace-plugins", "execute", "hctrace", "--",
                               "/bin/true")
    assert result.returncode == 0, result.stderr
    lines = traced(result.stderr)
    seen = {(line["hook"], line["plugin"]) for line in lines}
    # Host hooks of the monitor (the caller itself), with the builtin and the third-party plugins.
    for pair in [("lxcframe_validate", "core"), ("lxcframe_pre_start", "chatty"), ("lxcframe_pre_start", "cgroup"),
                 ("lxcframe_attach_cgroup", "cgroup"), ("lxcframe_setup_network", "netns"),
                 ("lxcframe_post_stop", "hooks")]:
        assert pair in seen, (pair, result.stderr)
    # The child's hooks cross its channel to the monitor's stderr.
    assert ("lxcframe_child_mount_rootfs", "core") in seen
    assert {line["logger"] for line in lines if line["hook"] == "lxcframe_child_devices"} == {"child"}
    assert all(float(line["ms"]) >= 0 for line in lines)
    calls = {m["hook"]: m["plugins"].split(",") for m in map(CALL_LINE.match, result.stderr.splitlines()) if m}
    assert "chatty" in calls["lxcframe_pre_start"]
    assert calls["lxcframe_pre_start"] == [line["plugin"] for line in lines if line["hook"] == "lxcframe_pre_start"]
    # Without the option: none of it.
    quiet = run_cli_with_site(chatty_site, "-P", container.lxcpath, "execute", "hctrace", "--", "/bin/true")
    assert quiet.returncode == 0, quiet.stderr
    assert "hook implementation" not in quiet.stderr
    assert "hook call" not in quiet.stderr


@pytest.mark.container
def test_log_lines_of_a_plugin_name_it(make_container, chatty_site: Path) -> None:
    container = make_container("hclog")
    result = run_cli_with_site(chatty_site, "-P", container.lxcpath, "--log-level", "debug", "execute", "hclog", "--",
                               "/bin/true")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    [prepared] = [line for line in lines if " - widget prepared" in line]
    assert re.match(r"^lxcframe hclog \S+ INFO +chatty - widget prepared size=3 plugin=chatty$", prepared), prepared
    [context] = [line for line in lines if " - context logger used" in line]
    assert context.endswith(" monitor - context logger used plugin=chatty"), context
    # A line written outside any plugin's implementation names none.
    [running] = [line for line in lines if " - container running" in line]
    assert "plugin=" not in running


def test_log_lines_outside_an_implementation_name_no_plugin(capfd: pytest.CaptureFixture[str]) -> None:
    from lxcframe.log import LogHub

    hub = LogHub()
    hub.configure(level="info")

    class Speaker:
        @hookimpl
        def lxcframe_destroy(self, name: str, lxcpath: str, config: Any) -> None:
            get_logger("speaker", hub).info("inside")

    plugins = Plugins(environ={}, extra=[("speaker", Speaker())])
    call_hook(plugins, "lxcframe_destroy", name="c1", lxcpath="/nonexistent", config=None)
    get_logger("speaker", hub).info("outside")
    err = capfd.readouterr().err.splitlines()
    assert [line.split(" speaker - ", 1)[1] for line in err] == ["inside plugin=speaker", "outside"]
