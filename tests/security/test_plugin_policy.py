"""A disabled or missing security plugin is never a silent downgrade, and a typo in the host's plugin
settings is never silently ignored.

The attacker here is whoever benefits from a container that runs with less confinement than its config
asks for: a seccomp profile whose plugin is off must stop the start (LXC refuses keys it cannot apply),
and a misspelled ``disable`` entry or TOML key must be an error naming the file, not a quiet no-op.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import ConfigError, PluginError
from lxcframe.hostconfig import load_host_config
from lxcframe.plugin_manager import DISABLE_ENV, Plugins

from ..conftest import run_cli

#: A profile that denies mkdir: a container that can still mkdir runs without it.
MKDIR_EPERM = "2\nblacklist\nmkdir errno 1\n"


def _host_toml(text: str) -> Path:
    """The host config the ``rundir`` fixture points LXCFRAME_HOST_CONFIG at, with ``text`` appended."""
    path = Path(os.environ["LXCFRAME_HOST_CONFIG"])
    path.write_text(path.read_text() + text)
    return path


def _seccomp_container(make_container, tmp_path: Path, name: str) -> tuple[Container, str, int]:
    """A container whose config confines it with a profile denying mkdir; (container, config file, line)."""
    profile = tmp_path / "deny-mkdir.seccomp"
    profile.write_text(MKDIR_EPERM)
    container = make_container(name, config=(("lxc.seccomp.profile", str(profile)),))
    lines = Path(container.config_file_name).read_text().splitlines()
    [line] = [n for n, text in enumerate(lines, start=1) if text.startswith("lxc.seccomp.profile")]
    return container, container.config_file_name, line


def _made(container: Container) -> bool:
    """Whether the payload's ``mkdir /made`` got through (the rootfs is a directory on the host)."""
    return os.path.exists(os.path.join(container.load_config().get("lxc.rootfs.path"), "made"))


# --- keys of a disabled plugin stop the start -----------------------------------------------------------


@pytest.mark.container
@pytest.mark.parametrize("mode", ["start", "execute"])
def test_seccomp_disabled_on_the_host_refuses_to_start_unconfined(make_container, tmp_path, host, mode):
    container, config_file, line = _seccomp_container(make_container, tmp_path, f"scoff{mode[0]}")
    _host_toml('[plugins]\ndisable = ["seccomp"]\n')
    disabled = Container(container.name, container.lxcpath)  # plugins read from the host config now
    assert not disabled.plugins.is_enabled("seccomp")
    payload = ["/bin/sh", "-c", "mkdir /made; sleep 30"]
    with pytest.raises(ConfigError) as info:
        disabled.start(payload) if mode == "start" else disabled.execute(payload)
    message = str(info.value)
    assert f"{config_file}:{line}: lxc.seccomp.profile" in message
    assert "plugin 'seccomp'" in message and "disabled" in message
    assert not _made(container), "the payload ran without the profile that denies mkdir"
    assert disabled.state == st.STOPPED
    assert st.read_state(container.lxcpath, container.name) is None
    host.assert_clean()


@pytest.mark.container
def test_seccomp_disabled_cli_start_and_validate_fail_naming_key_and_plugin(make_container, tmp_path):
    container, config_file, line = _seccomp_container(make_container, tmp_path, "scoffcli")
    _host_toml('[plugins]\ndisable = ["seccomp"]\n')
    validate = run_cli("config", "validate", config_file)
    assert validate.returncode == 1, validate.stdout
    assert "valid" not in validate.stdout
    assert f"{config_file}:{line}: lxc.seccomp.profile" in validate.stderr
    assert "plugin 'seccomp'" in validate.stderr
    start = run_cli("-P", container.lxcpath, "start", container.name, "--", "/bin/sh", "-c", "mkdir /made")
    assert start.returncode == 1, start.stderr
    assert f"{config_file}:{line}: lxc.seccomp.profile" in start.stderr and "plugin 'seccomp'" in start.stderr
    assert not _made(container)
    assert container.state == st.STOPPED


@pytest.mark.container
def test_unhandled_keys_warn_is_an_explicit_opt_out(make_container, tmp_path):
    container, config_file, _line = _seccomp_container(make_container, tmp_path, "scwarn")
    _host_toml('[plugins]\ndisable = ["seccomp"]\nunhandled_keys = "warn"\n')
    validate = run_cli("config", "validate", config_file)
    assert validate.returncode == 0, validate.stderr
    assert "valid" in validate.stdout and "plugin 'seccomp'" in validate.stdout
    result = run_cli("-P", container.lxcpath, "execute", container.name, "--", "/bin/sh", "-c", "mkdir /made")
    assert result.returncode == 0, result.stderr
    assert "lxc.seccomp.profile" in result.stderr  # said, as a warning
    assert _made(container)  # unconfined, as the operator chose


def test_lxc_key_no_plugin_handles_fails_validation(tmp_path, rundir):
    config = tmp_path / "c.conf"
    config.write_text("lxc.uts.name = x\nlxc.monitor.unshare = 1\n")
    result = run_cli("config", "validate", str(config))
    assert result.returncode == 1, result.stdout
    assert (f"{config}:2: lxc.monitor.unshare: an LXC key lxcframe does not support yet (see docs/features.md): "
            "the container would run without it") in result.stderr


def test_unhandled_keys_setting_is_checked(tmp_path):
    path = tmp_path / "host.toml"
    path.write_text('[plugins]\nunhandled_keys = "ignore"\n')
    with pytest.raises(ConfigError, match=r"plugins\.unhandled_keys.*expected one of error, warn") as info:
        load_host_config(str(path))
    assert info.value.path == str(path)


# --- unknown names in the host's plugin settings are errors ---------------------------------------------


def test_misspelled_plugin_in_host_disable_list_is_an_error(tmp_path):
    path = tmp_path / "host.toml"
    path.write_text('[plugins]\ndisable = ["seccom"]\n')
    with pytest.raises(ConfigError) as info:
        Plugins(host=load_host_config(str(path)), environ={})
    message = str(info.value)
    assert message.startswith(f"{path}:2: plugins.disable = 'seccom': ")
    assert "did you mean 'seccomp'?" in message


def test_plugin_that_is_not_installed_cannot_be_disabled_silently(tmp_path):
    path = tmp_path / "host.toml"
    path.write_text('[plugins]\ndisable = ["motd"]\n')
    with pytest.raises(ConfigError, match=r"plugins\.disable = 'motd': no plugin of that name is installed"):
        Plugins(host=load_host_config(str(path)), environ={})


def test_unknown_plugin_in_environment_is_an_error():
    with pytest.raises(PluginError, match=rf"{DISABLE_ENV}: no plugin named 'nosuch' is installed"):
        Plugins(environ={DISABLE_ENV: "caps nosuch"})


def test_unknown_plugin_given_as_argument_is_an_error():
    with pytest.raises(PluginError, match=r"'seccom'.*did you mean 'seccomp'\?"):
        Plugins(["seccom"], environ={})


def test_cli_refuses_to_disable_an_unknown_plugin(rundir, tmp_path):
    result = run_cli("-p", "no:nosuch", "plugins")
    assert result.returncode == 1
    assert result.stderr.strip() == "lxcframe: error: -p no:nosuch: no plugin named 'nosuch' is installed"


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ('[plugin]\ndisable = ["seccomp"]\n', "plugin", "plugins"),
        ('[plugins]\ndisabel = ["seccomp"]\n', "plugins.disabel", "plugins.disable"),
        ('lxcpaht = "/srv/lxc"\n', "lxcpaht", "lxcpath"),
        ("[plugins]\nnothing_alike = 1\n", "plugins.nothing_alike", None),
    ],
)
def test_misspelled_host_config_key_is_an_error(tmp_path, text, key, hint):
    path = tmp_path / "host.toml"
    path.write_text("# site settings\n" + text)
    with pytest.raises(ConfigError) as info:
        load_host_config(str(path))
    assert (info.value.path, info.value.key) == (str(path), key)
    assert re.match(rf"{re.escape(str(path))}:\d+: {re.escape(key)}: unknown key", str(info.value))
    if hint:
        assert f"did you mean {hint!r}?" in str(info.value)


def test_cli_with_a_misspelled_host_config_fails_before_starting_anything(rundir, tmp_path, host):
    path = _host_toml('[plugin]\ndisable = ["seccomp"]\n')
    result = run_cli("-P", str(tmp_path), "start", "anything")
    assert result.returncode == 1
    assert str(path) in result.stderr and "plugin: unknown key" in result.stderr
    host.assert_clean()
