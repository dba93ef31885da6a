"""lxcframe-motd's own tests, written as any plugin's: the distribution installed, the fixtures of
``lxcframe.testing`` (registered with pytest by lxcframe itself), no conftest."""

from __future__ import annotations

from pathlib import Path

import lxcframe_motd
import pytest

from lxcframe.config.model import load_text
from lxcframe.container import Container
from lxcframe.errors import ConfigError, ConfigErrors
from lxcframe.plugin_manager import Plugins
from lxcframe.testing import DEFAULT_CONTAINER_CONFIG, key_name_problems, plugin_key_names, run_in

MOTD = (("motd.text", "Welcome to c1."), ("motd.line", "Managed by lxcframe."), ("motd.line", "Second line."))


@pytest.fixture
def lxcframe_container_config() -> list[tuple[str, str]]:
    return [*DEFAULT_CONTAINER_CONFIG, *MOTD]


def test_installed_and_enabled(lxcframe_plugins: Plugins) -> None:
    [record] = [r for r in lxcframe_plugins.records() if r.name == "motd"]
    assert (record.distribution, record.version, record.state) == ("lxcframe-motd", lxcframe_motd.__version__,
                                                                    "enabled")
    assert lxcframe_plugins.has_api_extension("motd")


def test_keys_named_after_the_plugin_with_docs(lxcframe_plugins: Plugins) -> None:
    assert plugin_key_names(lxcframe_motd) == ["motd.text", "motd.line"]
    assert key_name_problems("motd", plugin_key_names(lxcframe_motd)) == []
    registry = lxcframe_plugins.key_registry()
    for name in plugin_key_names(lxcframe_motd):
        spec = registry.lookup(name)
        assert spec is not None and spec.plugin == "motd" and spec.doc


def test_typo_is_located(lxcframe_plugins: Plugins) -> None:
    with pytest.raises(ConfigErrors) as caught:
        load_text("motd.text = hi\nmotd.txt = hi\n", lxcframe_plugins.key_registry(), path="/c.conf")
    [error] = caught.value.errors
    assert (error.path, error.line, error.key) == ("/c.conf", 2, "motd.txt")
    assert error.reason == "unknown key (did you mean 'motd.text'?)"


@pytest.mark.container
def test_started_container_shows_the_motd(lxcframe_container: Container, tmp_path: Path) -> None:
    assert run_in(lxcframe_container, ["cat", "/etc/motd"], tmp_path) == (
        0, b"Welcome to c1.\nManaged by lxcframe.\nSecond line.\n")


@pytest.mark.container
def test_too_long_message_never_starts(lxcframe_start_container, lxcframe_lxcpath: Path) -> None:
    config = [*DEFAULT_CONTAINER_CONFIG, ("motd.text", "x" * lxcframe_motd.MAX_BYTES)]
    with pytest.raises(ConfigError, match=f"motd: the message is {lxcframe_motd.MAX_BYTES + 1} bytes") as caught:
        lxcframe_start_container("big", config)
    assert f"{lxcframe_lxcpath}/big/config:" in str(caught.value)
