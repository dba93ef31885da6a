"""The console's part knows where ``lxc.console.logfile`` was set: a log file the monitor refuses is an
error at that file and line, told by the part alone, with the key gone from the plan's config."""

from __future__ import annotations

import pytest

from lxcframe.errors import StageError
from lxcframe.plugins.console.settings import ConsoleSettings

from .conftest import daemon_plans_without_keys, plan_of
from .test_error_paths_start import append, where


def test_the_part_holds_the_file_and_line_of_the_logfile_key(tmp_path, caller_plugins):
    plan = plan_of(caller_plugins, tmp_path, "lxc.tty.max = 1\nlxc.console.logfile = /var/log/c.log\n")
    part = plan.part(ConsoleSettings)
    assert (part.logfile, part.logfile_path, part.logfile_line) == ("/var/log/c.log", str(tmp_path / "config"), 3)
    unset = plan_of(caller_plugins, tmp_path, "lxc.tty.max = 1\n").part(ConsoleSettings)
    assert (unset.logfile, unset.logfile_path, unset.logfile_line) == ("", None, None)


@pytest.mark.container
def test_a_refused_logfile_is_named_from_the_part_alone(make_container, monkeypatch):
    crossed = daemon_plans_without_keys(monkeypatch, ("lxc.console.",))
    container = make_container("console-where")
    append(container, "lxc.console.logfile = /etc\n")
    with pytest.raises(StageError) as info:
        container.start()
    assert [plan.config.located("lxc.console.logfile") for plan in crossed] == [None]
    assert (info.value.stage, info.value.plugin) == ("pre-start", "console")
    where_set = where(container, "lxc.console.logfile")
    assert info.value.message == f"{where_set} = '/etc': is a directory, not a regular file"
    assert container.state == "STOPPED"
