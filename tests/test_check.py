"""``lxcframe check``: each fact once with its plugin, disabled plugins absent, failures shown as ``no``
with the error, lines that fit, and an exit status that says whether everything is supported.

The CLI runs as a user runs it (``python -m lxcframe``), with third-party plugins installed as real
distributions on PYTHONPATH; the library call :func:`lxcframe.host_check.check_host` is checked with
plugins handed in as objects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lxcframe.cli.check import render_text
from lxcframe.hooks import hookimpl
from lxcframe.host_check import CheckRow, all_supported, check_host, passes
from lxcframe.plugin_manager import Plugins
from lxcframe.plugins import core_probes
from lxcframe.plugins.apparmor.host import HostPaths
from lxcframe.plugins.apparmor.probe import probes as apparmor_probes
from lxcframe.probe import Probe

CORE_ROWS = [f"namespace:{ns}" for ns in core_probes.NAMESPACES] + [name for name, _, _ in core_probes.SYSCALLS]
JSON_KEYS = {"plugin", "name", "supported", "required", "detail"}


def cli(tmp_path: Path, *args: str, site: Path | None = None, columns: int | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LXCFRAME_") and k != "COLUMNS"}
    env["LXCFRAME_RUNDIR"] = str(tmp_path / "run")
    env["LXCFRAME_HOST_CONFIG"] = str(tmp_path / "no-host-config.toml")
    if site is not None:
        env["PYTHONPATH"] = str(site)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "lxcframe", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def check_json(tmp_path: Path, *args: str, site: Path | None = None) -> tuple[int, list[dict[str, Any]]]:
    result = cli(tmp_path, "check", "--format", "json", *args, site=site)
    assert result.stderr == ""
    return result.returncode, json.loads(result.stdout)


def install(site: Path, module: str, source: str) -> None:
    """A third-party distribution with one plugin, found through its entry point as any other."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[lxcframe.plugins]\n{module} = {module}\n")


MISSING_WIDGET = """
    from lxcframe.hooks import hookimpl
    from lxcframe.probe import Probe

    @hookimpl
    def lxcframe_check():
        return [Probe("widget:device", False, "/dev/widget missing: no widget driver loaded"),
                Probe("widget:library", True, "libwidget 1.2")]
"""


def pairs(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(row["plugin"], row["name"]) for row in rows]


# --- rows ----------------------------------------------------------------------------------------------------


def test_every_fact_once_with_the_plugin_that_probed_it(tmp_path: Path) -> None:
    status, rows = check_json(tmp_path)
    for row in rows:
        assert set(row) == JSON_KEYS
        assert isinstance(row["supported"], bool) and row["plugin"] and row["name"] and row["detail"]
        assert isinstance(row["required"], bool)
    assert len(pairs(rows)) == len(set(pairs(rows))), pairs(rows)
    by_plugin: dict[str, list[str]] = {}
    for plugin, name in pairs(rows):
        by_plugin.setdefault(plugin, []).append(name)
    # Each plugin's rows are exactly what its own probes give, and nobody else's.
    assert by_plugin["core"] == CORE_ROWS
    assert by_plugin["seccomp"] == ["seccomp:kernel", "seccomp:stacking"]
    assert by_plugin["keyring"] == ["keyring:session"]
    assert by_plugin["apparmor"] == [probe.name for probe in apparmor_probes(HostPaths())]
    # The exit status: no required fact is missing.
    assert status == (0 if all(row["supported"] or not row["required"] for row in rows) else 1)


@pytest.mark.parametrize("plugin", ["apparmor", "seccomp", "keyring"])
def test_a_disabled_plugin_has_no_rows(tmp_path: Path, plugin: str) -> None:
    _, everything = check_json(tmp_path)
    _, without = check_json(tmp_path, "-p", f"no:{plugin}")
    assert pairs(without) == [pair for pair in pairs(everything) if pair[0] != plugin]
    assert any(pair[0] == plugin for pair in pairs(everything))


def test_a_third_party_plugin_has_its_rows_and_decides_the_exit_status(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "widget", MISSING_WIDGET)
    status, rows = check_json(tmp_path, site=site)
    widget = [row for row in rows if row["plugin"] == "widget"]
    assert widget == [
        {"plugin": "widget", "name": "widget:device", "supported": False, "required": True,
         "detail": "/dev/widget missing: no widget driver loaded"},
        {"plugin": "widget", "name": "widget:library", "supported": True, "required": True,
         "detail": "libwidget 1.2"},
    ]
    assert status == 1
    # Every plugin that makes this host fall short switched off: nothing unsupported is left, exit 0.
    _, plain = check_json(tmp_path)
    short = sorted({row["plugin"] for row in plain if not row["supported"]})
    assert "core" not in short, plain  # namespaces and the core's syscalls: every supported kernel has them
    disable = [arg for name in [*short, "widget"] for arg in ("-p", f"no:{name}")]
    status, rows = check_json(tmp_path, *disable, site=site)
    assert (status, [row for row in rows if not row["supported"]]) == (0, [])
    assert {row["plugin"] for row in rows} >= {"core"}
    text = cli(tmp_path, "check", *disable, site=site)
    assert (text.returncode, text.stderr) == (0, "")


def test_text_shows_no_and_the_detail_of_an_unsupported_fact(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "widget", MISSING_WIDGET)
    result = cli(tmp_path, "check", site=site, columns=100)
    assert result.returncode == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PLUGIN", "FEATURE", "SUPPORTED", "DETAIL"]
    [device] = [line for line in lines if " widget:device " in line]
    assert device.split()[:4] == ["widget", "widget:device", "no", "/dev/widget"]
    assert device.endswith("/dev/widget missing: no widget driver loaded")
    # The detail starts in the DETAIL column.
    assert device.index("/dev/widget") == lines[0].index("DETAIL")


def test_help_documents_the_exit_status(tmp_path: Path) -> None:
    result = cli(tmp_path, "check", "--help", columns=200)
    assert result.returncode == 0
    assert ("exit status: 0 when every required fact of every enabled plugin is there, 1 when one is "
            "missing, a plugin failed to load or its check failed; a fact shown 'no (optional)' (a "
            "fallback, keys ignored as LXC does) does not fail it; a plugin disabled with -p no:NAME "
            "is not probed") in " ".join(result.stdout.split())


# --- failures of a plugin's check become its rows --------------------------------------------------------------


class RaisingCheck:
    @hookimpl
    def lxcframe_check(self) -> list[Probe]:
        raise RuntimeError("probe exploded")


class WrongResults:
    @hookimpl
    def lxcframe_check(self) -> list[object]:
        return [Probe("wrong:bool", "no", "said no as text"), "not a probe"]  # type: ignore[arg-type]


class NotAList:
    @hookimpl
    def lxcframe_check(self) -> object:
        return Probe("lonely", True, "not in a list")


def test_a_probe_that_raises_is_unsupported_with_the_exception() -> None:
    plugins = Plugins(environ={}, extra=[("raiser", RaisingCheck())])
    rows = check_host(plugins)
    assert [row for row in rows if row.plugin == "raiser"] == [
        CheckRow("raiser", "lxcframe_check", False, "check failed: RuntimeError: probe exploded"),
    ]
    # The others still reported: the failing plugin took nothing else down.
    assert [row.name for row in rows if row.plugin == "core"] == CORE_ROWS
    assert not all_supported(rows)


def test_a_check_returning_the_wrong_things_is_unsupported() -> None:
    plugins = Plugins(environ={}, extra=[("wrong", WrongResults()), ("single", NotAList())])
    rows = check_host(plugins)
    assert [row for row in rows if row.plugin in ("wrong", "single")] == [
        CheckRow("wrong", "wrong:bool", False, "said no as text (supported is str 'no', not a bool)"),
        CheckRow("wrong", "lxcframe_check", False, "returned str 'not a probe', not a Probe"),
        CheckRow("single", "lxcframe_check", False, "returned Probe, not a list of Probe"),
    ]


def test_a_plugin_that_failed_to_load_is_a_row(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "brokenwidget", 'raise ImportError("needs libwidget, which is not installed")\n')
    status, rows = check_json(tmp_path, site=site)
    assert [row for row in rows if row["plugin"] == "brokenwidget"] == [
        {"plugin": "brokenwidget", "name": "plugin", "supported": False, "required": True,
         "detail": "failed to load: ImportError: needs libwidget, which is not installed"},
    ]
    assert status == 1
    _, without = check_json(tmp_path, "-p", "no:brokenwidget", site=site)
    assert "brokenwidget" not in {row["plugin"] for row in without}


def test_all_supported_is_every_row() -> None:
    yes, no = CheckRow("p", "a", True, "d"), CheckRow("p", "b", False, "d")
    assert all_supported([yes, yes]) and all_supported([])
    assert not all_supported([yes, no]) and not all_supported([no, yes])


def test_only_a_missing_required_fact_fails_the_check() -> None:
    yes, no = CheckRow("p", "a", True, "d"), CheckRow("p", "b", False, "d")
    optional = CheckRow("p", "c", False, "fallback", required=False)
    assert passes([yes, optional]) and not all_supported([yes, optional])
    assert not passes([yes, no]) and not passes([optional, no])
    assert render_text([optional], 80).splitlines()[1].split()[2:5] == ["no", "(optional)", "fallback"]


class TwiceChecked:
    @hookimpl
    def lxcframe_check(self) -> list[Probe]:
        return [Probe("twice:fact", True, "first answer"), Probe("twice:other", True, "x"),
                Probe("twice:fact", False, "second answer: missing")]


def test_a_fact_probed_twice_is_one_row_and_a_no_stands() -> None:
    rows = check_host(Plugins(environ={}, extra=[("twice", TwiceChecked())]))
    assert [row for row in rows if row.plugin == "twice"] == [
        CheckRow("twice", "twice:fact", False, "second answer: missing"), CheckRow("twice", "twice:other", True, "x")]


def test_no_supported_row_quotes_an_error(tmp_path: Path) -> None:
    _, rows = check_json(tmp_path)
    for row in rows:
        if row["supported"]:
            assert not any(word in row["detail"].lower() for word in ("error", "invalid", "refused", "failed")), row


OPTIONAL_WIDGET = """
    from lxcframe.hooks import hookimpl
    from lxcframe.probe import Probe

    @hookimpl
    def lxcframe_check():
        return [Probe("optwidget:fast", False, "slower fallback used", required=False)]
"""


def test_an_optional_fact_missing_exits_0_and_says_optional(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "optwidget", OPTIONAL_WIDGET)
    status, rows = check_json(tmp_path, site=site)
    required_missing = [row for row in rows if row["required"] and not row["supported"]]
    assert status == (1 if required_missing else 0)
    assert {"plugin": "optwidget", "name": "optwidget:fast", "supported": False, "required": False,
            "detail": "slower fallback used"} in rows
    disable = [arg for name in sorted({row["plugin"] for row in required_missing}) for arg in ("-p", f"no:{name}")]
    text = cli(tmp_path, "check", *disable, site=site, columns=120)
    assert text.returncode == 0, text.stdout
    [line] = [line for line in text.stdout.splitlines() if "optwidget:fast" in line]
    assert line.split()[2:4] == ["no", "(optional)"]


# --- lines that fit --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("columns", [None, 80, 50])
@pytest.mark.parametrize("verbose", [False, True])
def test_no_line_is_wider_than_the_terminal(tmp_path: Path, columns: int | None, verbose: bool) -> None:
    site = tmp_path / "site"
    install(site, "verbose", """
        from lxcframe.hooks import hookimpl
        from lxcframe.probe import Probe

        @hookimpl
        def lxcframe_check():
            return [Probe("verbose:paths", True, "controllers: " + ", ".join(
                f"/sys/fs/cgroup/controller{i} (this process: /user.slice/session-{i}.scope)" for i in range(12)))]
    """)
    result = cli(tmp_path, "check", *(["--verbose"] if verbose else []), site=site, columns=columns)
    assert result.stderr == ""
    limit = 80 if columns is None else columns  # not a terminal: 80
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= limit, [line for line in lines if len(line) > limit]
    detail = json.loads(cli(tmp_path, "check", "--format", "json", site=site).stdout)
    [long_row] = [row for row in detail if row["plugin"] == "verbose"]
    assert len(long_row["detail"]) > 600
    start = next(i for i, line in enumerate(lines) if "verbose:paths" in line)
    if not verbose:
        # One line per fact, its detail cut where the terminal ends (below the fact when the columns
        # leave no room beside it: then two).
        per_fact = 2 if columns == 50 else 1
        assert lines[start + per_fact - 1].endswith("…")
        assert len(lines) == 1 + per_fact * len(detail)
        return
    # The long detail is all there, spread over following lines.
    following = lines[start + 1 : start + 1 + len(long_row["detail"]) // 20]
    shown = " ".join(line.strip() for line in [lines[start], *following])
    assert long_row["detail"].replace(" ", "") in shown.replace(" ", "")


def test_render_text_wraps_details_under_their_column() -> None:
    rows = [CheckRow("core", "openat2", True, "word " * 30 + "/a/very/long/path/" * 10),
            CheckRow("netns", "netns:id", False, "short")]
    text = render_text(rows, 60)
    assert render_text(rows, 60, verbose=False).splitlines()[1].endswith("…")
    lines = text.splitlines()
    column = lines[0].index("DETAIL")
    assert lines[0] == "PLUGIN  FEATURE   SUPPORTED  DETAIL"
    assert lines[1].startswith("core    openat2   yes        word word")
    assert all(len(line) <= 60 for line in lines)
    continuation = lines[2:-1]
    assert continuation and all(line[:column].strip() == "" and line[column] != " " for line in continuation)
    assert lines[-1] == "netns   netns:id  no         short"
    assert "".join(line[column:] for line in lines[1:-1]).replace(" ", "") == rows[0].detail.replace(" ", "")


def test_render_text_puts_details_below_when_the_columns_leave_no_room() -> None:
    rows = [CheckRow("a-plugin-with-a-long-name", "a-feature-with-a-long-name", False, "why " * 20)]
    lines = render_text(rows, 50).splitlines()
    assert lines[:3] == ["PLUGIN  FEATURE  SUPPORTED", "a-plugin-with-a-long-name", "  a-feature-with-a-long-name  no"]
    assert lines[3:] == ["    " + "why " * 10 + "why", "    " + "why " * 8 + "why"]
    assert all(len(line) <= 50 for line in lines)
