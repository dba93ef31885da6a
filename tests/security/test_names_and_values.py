"""A container name or a config key/value is data: it must never add a line (a key) to a config file.

The attacker controls a name or a value handed to ``create`` / ``config set`` / ``set_config_item`` (a
web panel passing user input on, say) and tries to smuggle ``lxc.hook.pre-start`` into the config,
which ``start`` would run as root on the host.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lxcframe.config.model import load_config
from lxcframe.config.writer import set_item
from lxcframe.container import Container
from lxcframe.errors import ConfigError, ContainerError
from lxcframe.names import MAX_NAME_BYTES
from lxcframe.plugin_manager import Plugins

INJECTED = "lxc.hook.pre-start = touch pwned"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # The environment (run directory, host config) comes from the lxcpath/rundir fixtures.
    return subprocess.run([sys.executable, "-m", "lxcframe", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lxcframe: error: ")
    return lines[0]


# --- names --------------------------------------------------------------------------------------------


def test_cli_create_refuses_a_name_that_carries_a_config_line(lxcpath, host):
    # No '/' in it: the old check (which refused '/') let this through and wrote the hook line twice.
    result = _cli("-P", lxcpath, "create", f"c1\n{INJECTED}")
    line = _one_error_line(result)
    assert "invalid container name" in line
    assert os.listdir(lxcpath) == []  # nothing created, no config with the hook in it
    host.assert_clean()


@pytest.mark.parametrize("name", [
    "c1\nlxc.hook.pre-start = true",
    "c1\rx",
    "c1\x00x",
    "c1\tx",
    "a b",
    "c\x7f",
    "",
    ".",
    "..",
    ".hidden",
    "-rf",
    "a/b",
    "caf\u00e9",
    "x" * (MAX_NAME_BYTES + 1),
])
def test_names_outside_the_rule_are_refused(lxcpath, name):
    with pytest.raises(ContainerError, match="invalid container name") as caught:
        Container(name, lxcpath)
    assert "\n" not in str(caught.value)  # one line, whatever the name held


@pytest.mark.parametrize("name", ["c1", "web-01", "a_b.c", "1", "x" * MAX_NAME_BYTES])
def test_names_inside_the_rule_are_accepted(lxcpath, name):
    assert Container(name, lxcpath).name == name


# --- values and keys written to a config file -----------------------------------------------------------


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config"
    path.write_text("# mine\nlxc.uts.name = c1\n")
    return path


@pytest.mark.parametrize(("key", "value"), [
    ("lxc.environment", f"A=1\n{INJECTED}"),
    ("lxc.environment", f"A=1\r{INJECTED}"),
    ("lxc.environment", "A=1\x00B"),
    ("lxc.environment", "A=1\u2028B"),
    (f"lxc.environment\n{INJECTED.split(' =')[0]}", "x"),
    ("lxc.environment\x00", "A=1"),
])
def test_writer_refuses_line_breaks_and_nul_and_leaves_the_file(config_file, key, value):
    before = config_file.read_bytes()
    with pytest.raises(ConfigError) as caught:
        set_item(str(config_file), key, value, multi=True)
    message = str(caught.value)
    assert "\n" not in message and "\x00" not in message
    assert "lxc.environment" in message
    assert config_file.read_bytes() == before


def test_set_config_item_refuses_an_injected_line(make_container):
    container = make_container("v1")
    before = Path(container.config_file_name).read_bytes()
    for key, value in [("lxc.uts.name", f"x\n{INJECTED}"), ("lxc.environment", "A=1\x00B")]:
        with pytest.raises(ConfigError, match=re.escape(key)):
            container.set_config_item(key, value)
    assert Path(container.config_file_name).read_bytes() == before


def test_create_refuses_config_lines_that_carry_another_line(lxcpath, host):
    container = Container("v2", lxcpath)
    with pytest.raises(ConfigError, match=r"lxc\.environment"):
        container.create("busybox", config=[("lxc.environment", f"A=1\n{INJECTED}")])
    assert not os.path.exists(container.container_dir)
    host.assert_clean()


def test_in_memory_overrides_refuse_line_breaks(tmp_path):
    config = tmp_path / "config"
    config.write_text("lxc.uts.name = c1\n")
    registry = Plugins().key_registry()
    with pytest.raises(ConfigError, match=r"lxc\.environment"):
        load_config(str(config), registry, extra=[("lxc.environment", f"A=1\n{INJECTED}")])


def test_config_files_with_nul_are_refused_with_file_and_line(tmp_path):
    config = tmp_path / "config"
    config.write_bytes(b"lxc.uts.name = c1\nlxc.environment = A=1\x00B\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(config), Plugins().key_registry())
    assert f"{config}:2: " in str(caught.value)


@pytest.mark.parametrize("args", [
    ("lxc.environment", f"A=1\n{INJECTED}"),
    (f"lxc.environment\n{INJECTED.split(' =')[0]}", "/bin/true"),
])
def test_cli_config_set_refuses_with_one_line(make_container, args):
    container = make_container("v3")
    before = Path(container.config_file_name).read_bytes()
    line = _one_error_line(_cli("-P", container.lxcpath, "config", "set", "v3", *args))
    assert "lxc.environment" in line
    assert Path(container.config_file_name).read_bytes() == before
