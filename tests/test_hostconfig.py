"""The host's own settings: plugins disabled for every caller, default lines for new containers."""

from __future__ import annotations

import pytest

from lxcframe.container import Container
from lxcframe.errors import ConfigError
from lxcframe.hostconfig import load_host_config
from lxcframe.plugin_manager import Plugins


def test_default_config_lines_start_every_new_container(lxcpath, tmp_path, monkeypatch):
    defaults = tmp_path / "defaults.conf"
    defaults.write_text("# site policy\nlxc.cap.drop = sys_time\nlxc.environment = SITE=1\n")
    host = tmp_path / "host.toml"
    host.write_text(f'default_config = "{defaults}"\n')
    monkeypatch.setenv("LXCFRAME_HOST_CONFIG", str(host))
    container = Container("d1", lxcpath)
    container.create("busybox", config=(("lxc.environment", "OWN=2"),))
    try:
        config = container.load_config()
        assert config.raw("lxc.environment") == "SITE=1\nOWN=2", "the container's own lines come last"
        assert "sys_time" in (config.raw("lxc.cap.drop") or "")
    finally:
        container.destroy()


def test_host_disable_list_applies_to_library_callers_too(tmp_path, monkeypatch):
    host = tmp_path / "host.toml"
    host.write_text('[plugins]\ndisable = ["keyring"]\n')
    monkeypatch.setenv("LXCFRAME_HOST_CONFIG", str(host))
    assert not Plugins().is_enabled("keyring")
    assert Plugins().is_enabled("caps")


def test_bad_default_config_is_an_error_naming_the_key(tmp_path):
    host = tmp_path / "host.toml"
    host.write_text('default_config = "relative.conf"\n')
    with pytest.raises(ConfigError, match="default_config"):
        load_host_config(str(host))
