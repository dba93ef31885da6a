"""The kit for plugin authors (``lxcframe.testing``), run as a plugin's own test suite sees it.

Each test writes a small test file and runs it with ``pytester``: no conftest, so the fixtures can
only come from the ``pytest11`` entry point an installed lxcframe registers.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from lxcframe.testing import key_name_problems, plugin_key_names

pytest_plugins = ["pytester"]


def _read_json(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())


# --- registration ------------------------------------------------------------------------------


def test_fixtures_come_from_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os

        def test_dirs(lxcframe_lxcpath, lxcframe_rundir):
            assert os.environ["LXCFRAME_RUNDIR"] == str(lxcframe_rundir)
            assert os.environ["LXCFRAME_HOST_CONFIG"] == str(lxcframe_rundir.parent / "lxcframe.toml")
            assert lxcframe_lxcpath.is_dir() and list(lxcframe_lxcpath.iterdir()) == []
            assert lxcframe_rundir.stat().st_mode & 0o777 == 0o700
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    # Without the entry point's plugin the fixtures do not exist.
    result = pytester.runpytest("-p", "no:lxcframe")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'lxcframe_lxcpath' not found*"])


def test_installed_distribution_registers_pytest11() -> None:
    """The installed lxcframe (not only this checkout) names the module in its entry points."""
    code = ("import importlib.metadata as m; "
            "print([e.value for e in m.entry_points(group='pytest11') if e.name == 'lxcframe'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                            check=True, timeout=60)
    assert result.stdout.strip() == "['lxcframe.testing']"


def test_loading_it_imports_no_lxcframe_module() -> None:
    """pytest loads the kit in every session: it brings no lxcframe module but the package itself,
    and lxcframe's own commands never import it."""
    code = (
        "import sys, lxcframe.testing; "
        "print(sorted(m for m in sys.modules if m.startswith('lxcframe'))); "
        "del sys.modules['lxcframe.testing']; "
        "import lxcframe.cli.main, lxcframe.cli.commands, lxcframe.container, lxcframe.plugin_manager; "
        "lxcframe.plugin_manager.Plugins(); "
        "print('lxcframe.testing' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    first, second = result.stdout.splitlines()
    assert first == "['lxcframe', 'lxcframe.testing', 'lxcframe.version']"
    assert second == "False"


# --- environment and plugins -------------------------------------------------------------------


def test_environment_private_and_restored(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LXCFRAME_DISABLE_PLUGINS", "caps")
    monkeypatch.setenv("LXCFRAME_RUNDIR", "/nonexistent/run")
    pytester.makepyfile(
        """
        import os

        def test_env(lxcframe_plugins):
            assert "LXCFRAME_DISABLE_PLUGINS" not in os.environ
            assert lxcframe_plugins.is_enabled("caps")
            assert os.environ["LXCFRAME_SUPERVISOR_IDLE"] == "0.2"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert os.environ["LXCFRAME_DISABLE_PLUGINS"] == "caps"
    assert os.environ["LXCFRAME_RUNDIR"] == "/nonexistent/run"


def test_host_config_read_by_plugins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def lxcframe_rundir(lxcframe_rundir):
            (lxcframe_rundir.parent / "lxcframe.toml").write_text('[plugins]\\ndisable = ["keyring"]\\n')
            return lxcframe_rundir

        def test_disabled(lxcframe_plugins):
            assert not lxcframe_plugins.is_enabled("keyring")
            assert lxcframe_plugins.is_enabled("caps")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_extra_plugins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from lxcframe.config.keys import KeySpec
        from lxcframe.hooks import hookimpl

        class Widgets:
            @hookimpl
            def lxcframe_config_keys(self):
                return [KeySpec("widgets.count", int, doc="how many widgets")]

            @hookimpl
            def lxcframe_api_extensions(self):
                return ["widgets"]

        @pytest.fixture
        def lxcframe_extra_plugins():
            return [("widgets", Widgets())]

        def test_enabled(lxcframe_plugins):
            assert lxcframe_plugins.is_enabled("widgets")
            assert lxcframe_plugins.has_api_extension("widgets")
            spec = lxcframe_plugins.key_registry().lookup("widgets.count")
            assert (spec.plugin, spec.doc) == ("widgets", "how many widgets")

        def test_in_process(lxcframe_plugins):
            assert lxcframe_plugins.has_extras
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


# --- a started container -----------------------------------------------------------------------

#: A plugin that writes what its stop hooks saw into a JSON file named by ``KIT_RECORD``: proof that
#: teardown stopped the container (the monitor ran its stop stages), not just removed its files.
_RECORDER = """
import json, os
from pathlib import Path
import pytest
from lxcframe.hooks import hookimpl

class Recorder:
    @hookimpl
    def lxcframe_post_start(self, ctx, pid):
        _save({"name": ctx.name, "monitor": ctx.monitor_pid, "init": pid,
               "lxcpath": ctx.plan.lxcpath})

    @hookimpl
    def lxcframe_post_stop(self, ctx):
        _save({"stopped": True})

def _save(values):
    path = os.environ["KIT_RECORD"]
    data = json.loads(Path(path).read_text()) if os.path.exists(path) else {}
    data.update(values)
    Path(path).write_text(json.dumps(data))

@pytest.fixture
def lxcframe_extra_plugins():
    return [("recorder", Recorder())]
"""


@pytest.fixture
def kit_record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The JSON file ``_RECORDER`` writes to, named to the inner test run by ``KIT_RECORD``."""
    record = tmp_path / "record.json"
    monkeypatch.setenv("KIT_RECORD", str(record))
    return record


def _exits(pid: int, timeout: float) -> bool:
    """Whether ``pid`` has exited or does within ``timeout`` s (a monitor is not our child: it may be
    finishing its last lines when stop returns)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


def _assert_gone(record: dict[str, object]) -> None:
    """The container of ``record`` was stopped and destroyed: no monitor, no init, no files."""
    assert record["stopped"] is True
    for pid in (record["monitor"], record["init"]):
        assert _exits(int(str(pid)), timeout=10), f"process {pid} still there"
    lxcpath = Path(str(record["lxcpath"]))
    assert lxcpath.is_dir() and list(lxcpath.iterdir()) == []


@pytest.mark.container
def test_container_running_then_removed(pytester: pytest.Pytester, kit_record: Path) -> None:
    pytester.makepyfile(
        _RECORDER
        + """
from pathlib import Path
from lxcframe.testing import run_in

def test_running(lxcframe_container, tmp_path):
    assert lxcframe_container.state == "RUNNING"
    assert lxcframe_container.name == "c1"
    assert run_in(lxcframe_container, ["cat", "/etc/hostname"], tmp_path) == (0, b"c1\\n")
    assert run_in(lxcframe_container, ["sh", "-c", "echo out; echo err >&2; exit 3"], tmp_path) == (3, b"out\\nerr\\n")
    # Placed below the test process's own cgroup in every hierarchy (lxc.cgroup.relative = 1).
    own = _cgroups("self")
    init = _cgroups(lxcframe_container.init_pid)
    assert own.keys() == init.keys()
    for hierarchy, path in init.items():
        assert path.startswith(own[hierarchy].rstrip("/") + "/lxc.payload.c1"), (hierarchy, own[hierarchy], path)

def _cgroups(pid):
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    return {line.split(":", 2)[1]: line.split(":", 2)[2] for line in lines}
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)
    data = _read_json(kit_record)
    assert data["name"] == "c1"
    _assert_gone(data)


@pytest.mark.container
def test_container_removed_when_test_fails(pytester: pytest.Pytester, kit_record: Path) -> None:
    pytester.makepyfile(
        _RECORDER
        + """
def test_fails(lxcframe_container):
    assert lxcframe_container.state == "STOPPED", "failing on purpose"
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*failing on purpose*"])
    _assert_gone(_read_json(kit_record))


@pytest.mark.container
def test_container_config_and_start_factory(pytester: pytest.Pytester, tmp_path: Path) -> None:
    lxcpath_file = tmp_path / "lxcpath"
    pytester.makepyfile(
        f"""
from pathlib import Path
import pytest
from lxcframe.testing import DEFAULT_CONTAINER_CONFIG

@pytest.fixture
def lxcframe_container_config():
    return [*DEFAULT_CONTAINER_CONFIG, ("lxc.uts.name", "kit-host")]

def test_two(lxcframe_container, lxcframe_start_container, lxcframe_lxcpath):
    Path({str(lxcpath_file)!r}).write_text(str(lxcframe_lxcpath))
    assert lxcframe_container.get_config_item("lxc.uts.name") == "kit-host"
    assert lxcframe_container.get_config_item("lxc.cgroup.relative") == "1"
    second = lxcframe_start_container("c2")
    assert second.state == "RUNNING"
    second.stop(kill=True)   # a test may stop or destroy one itself
    second.destroy()
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)
    lxcpath = Path(lxcpath_file.read_text())
    assert lxcpath.is_dir() and list(lxcpath.iterdir()) == []


@pytest.mark.container
def test_failed_start_leaves_nothing(pytester: pytest.Pytester, tmp_path: Path) -> None:
    lxcpath_file = tmp_path / "lxcpath"
    pytester.makepyfile(
        f"""
from pathlib import Path
import pytest
from lxcframe.hooks import hookimpl

class Refuser:
    @hookimpl
    def lxcframe_start_host(self, ctx, pid):
        raise RuntimeError("refused on purpose")

@pytest.fixture
def lxcframe_extra_plugins(lxcframe_lxcpath):
    Path({str(lxcpath_file)!r}).write_text(str(lxcframe_lxcpath))
    return [("refuser", Refuser())]

def test_never_runs(lxcframe_container):
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*start failed at stage 'start-host' (plugin 'refuser'): refused on purpose*"])
    lxcpath = Path(lxcpath_file.read_text())
    assert lxcpath.is_dir() and list(lxcpath.iterdir()) == []


# --- key naming ----------------------------------------------------------------------------------


def test_key_name_rule() -> None:
    assert key_name_problems("motd", ["motd.text", "motd.line", "motd.a.b", "motd.<N>.x-y_z", "motd.extra.*"]) == []
    rule = "is not a key segment (letters, digits, '_', '-'; '<N>' for an index, a final '*' for any rest)"
    assert key_name_problems("motd", ["motd.a b", "motd.*.x", "motd..x", "motd.é"]) == [
        f"motd.a b: 'a b' {rule}", f"motd.*.x: '*' {rule}", f"motd..x: '' {rule}", f"motd.é: 'é' {rule}",
    ]
    assert key_name_problems("motd", ["lxc.motd.text", "motdx.text", "motd.", "x.motd.text", "text"]) == [
        "lxc.motd.text: lxc.* is LXC's namespace; name the key motd.…",
        "motdx.text: a key of plugin 'motd' is named motd.<name>",
        "motd.: a key of plugin 'motd' is named motd.<name>",
        "x.motd.text: a key of plugin 'motd' is named motd.<name>",
        "text: a key of plugin 'motd' is named motd.<name>",
    ]


def test_plugin_key_names() -> None:
    from lxcframe.config.keys import KeySpec

    class Declares:
        @staticmethod
        def lxcframe_config_keys() -> list[KeySpec]:
            return [KeySpec("demo.a"), KeySpec("demo.<N>.b")]

    assert plugin_key_names(Declares()) == ["demo.a", "demo.<N>.b"]
    assert plugin_key_names(object()) == []
