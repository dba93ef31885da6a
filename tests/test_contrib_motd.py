"""The example third-party plugin ``contrib/lxcframe-motd``, installed as a distribution of its own."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import run_cli
from .server_fixtures import ended_processes_of

REPO = Path(__file__).resolve().parent.parent

# Serial: the module installs the plugin into the shared virtualenv and removes it afterwards, which a
# second shard running this module's other tests at the same time would see come and go.
pytestmark = pytest.mark.serial
SOURCE = REPO / "contrib" / "lxcframe-motd"
DIST = "lxcframe-motd"
#: What an in-tree setuptools build leaves beside the sources.
BUILD_LEFTOVERS = (SOURCE / "build", SOURCE / "lxcframe_motd.egg-info")


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          timeout=300, check=False, cwd=REPO)


def _dist_installed() -> bool:
    # Asked of a new process: this one's importlib.metadata may have cached the old state.
    return _pip("show", "-q", DIST).returncode == 0


def _can_build_without_isolation() -> str | None:
    """Why ``pip install --no-build-isolation`` cannot build the plugin here, or None."""
    try:
        setuptools_version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return "setuptools is not installed"
    major, minor = (int(part) for part in setuptools_version.split(".")[:2])
    # setuptools older than 70.1 needs the separate 'wheel' package to build a wheel.
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return f"setuptools {setuptools_version} without 'wheel' cannot build a wheel (install wheel)"
    return None


@pytest.fixture(scope="module")
def motd_module() -> Iterator[ModuleType]:
    """Install the plugin once for this module; uninstall it afterwards only if it was not there before."""
    was_installed = _dist_installed()
    existed = {path: path.exists() for path in BUILD_LEFTOVERS}
    if not was_installed:
        why_not = _can_build_without_isolation()
        if why_not:
            pytest.fail(f"cannot install the contrib plugin here: {why_not}")
    try:
        result = _pip("install", "--no-deps", "--no-build-isolation", "-q", str(SOURCE))
        assert result.returncode == 0, f"pip install {SOURCE} failed:\n{result.stderr}"
        importlib.invalidate_caches()
        yield importlib.import_module("lxcframe_motd")
    finally:
        if not was_installed:
            result = _pip("uninstall", "-y", "-q", DIST)
            assert result.returncode == 0, f"pip uninstall {DIST} failed:\n{result.stderr}"
        for path, was_there in existed.items():
            if not was_there:
                shutil.rmtree(path, ignore_errors=True)


def _record(env: dict[str, str], *options: str) -> dict[str, object]:
    result = run_cli(*options, "plugins", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    records = [r for r in json.loads(result.stdout) if r["name"] == "motd"]
    assert len(records) == 1, result.stdout
    return records[0]


# --- discovery ---------------------------------------------------------------------------------


def test_listed_as_enabled_third_party_plugin(motd_module: ModuleType, cli_env: dict[str, str]) -> None:
    record = _record(cli_env)
    assert record["distribution"] == DIST
    assert record["version"] == motd_module.__version__
    assert record["state"] == "enabled"
    assert record["builtin"] is False
    assert record["extensions"] == ["motd"]
    assert {"lxcframe_config_keys", "lxcframe_api_extensions", "lxcframe_validate",
            "lxcframe_child_pre_pivot"} <= set(record["hooks"])


def test_api_extension_in_fresh_process(motd_module: ModuleType, cli_env: dict[str, str]) -> None:
    code = "import lxcframe; print(lxcframe.has_api_extension('motd'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert "motd" in run_cli("extensions", env=cli_env).stdout.split()


def test_keys_known_when_enabled(motd_module: ModuleType, cli_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "c.conf"
    config.write_text("lxc.rootfs.path = dir:/nonexistent\nmotd.text = hi\nmotd.line = a\nmotd.line = b\n")
    result = run_cli("config", "validate", str(config), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    config.write_text("lxc.rootfs.path = dir:/nonexistent\nmotd.txt = hi\n")
    result = run_cli("config", "validate", str(config), env=cli_env)
    assert result.returncode == 1
    assert "did you mean 'motd.text'" in result.stderr


# --- disabled by name --------------------------------------------------------------------------


def test_disabled_by_name(motd_module: ModuleType, cli_env: dict[str, str], tmp_path: Path) -> None:
    record = _record(cli_env, "-p", "no:motd")
    assert record["state"] == "disabled"
    assert record["hooks"] == []
    assert "motd" not in run_cli("-p", "no:motd", "extensions", env=cli_env).stdout.split()
    config = tmp_path / "c.conf"
    config.write_text("lxc.rootfs.path = dir:/nonexistent\nmotd.text = hi\n")
    result = run_cli("-p", "no:motd", "config", "validate", str(config), env=cli_env)
    # Whatever form the report takes, the key must not pass silently.
    assert "motd.text" in result.stdout + result.stderr, (result.stdout, result.stderr)


def test_disabled_plugin_named_for_its_key(motd_module: ModuleType, cli_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "c.conf"
    config.write_text("lxc.rootfs.path = dir:/nonexistent\nmotd.text = hi\n")
    result = run_cli("-p", "no:motd", "config", "validate", str(config), env=cli_env)
    output = result.stdout + result.stderr
    assert "motd.text" in output
    assert "plugin 'motd'" in output and "disabled" in output, output


# --- the config check --------------------------------------------------------------------------


def _validate(module: ModuleType, text: str) -> list[str]:
    from lxcframe.config.model import load_text
    from lxcframe.plugin_manager import Plugins

    plugins = Plugins(autoload=False, extra=[("motd", module)])
    config = load_text(text, plugins.key_registry(), path="/c.conf")
    return module.lxcframe_validate(config)


def test_length_limit(motd_module: ModuleType) -> None:
    limit = motd_module.MAX_BYTES
    # The file is the text plus its trailing newline.
    assert _validate(motd_module, f"motd.text = {'x' * (limit - 1)}\n") == []
    problems = _validate(motd_module, f"motd.text = {'x' * limit}\n")
    assert len(problems) == 1
    assert problems[0].startswith("/c.conf:1: motd:")
    assert str(limit) in problems[0]
    # UTF-8 bytes count, not characters; lines add up.
    assert _validate(motd_module, "motd.text = é\n" + "motd.line = " + "é" * 2047 + "\n") != []
    assert _validate(motd_module, "motd.line = " + "y" * 2000 + "\n" + "motd.line = " + "y" * 2000 + "\n") == []


def test_content(motd_module: ModuleType) -> None:
    from lxcframe.config.model import load_text
    from lxcframe.plugin_manager import Plugins

    registry = Plugins(autoload=False, extra=[("motd", motd_module)]).key_registry()
    content = motd_module.motd_content
    assert content(load_text("", registry)) is None
    assert content(load_text("motd.text = hi\n", registry)) == b"hi\n"
    assert content(load_text("motd.line = a\nmotd.text = hi\nmotd.line = b\n", registry)) == b"hi\na\nb\n"
    # An empty value clears what came before.
    assert content(load_text("motd.line = a\nmotd.line =\nmotd.line = b\n", registry)) == b"b\n"


def test_execute_refuses_long_message(motd_module: ModuleType, cli_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "big.conf"
    config.write_text(f"lxc.rootfs.path = dir:{tmp_path}\nmotd.text = {'x' * 5000}\n")
    result = run_cli("-P", str(tmp_path / "lxc"), "execute", "-f", str(config), "-n", "big", "--", "/bin/true",
                     env=cli_env)
    assert result.returncode == 1
    assert f"{config}:2: motd:" in result.stderr
    assert "4096" in result.stderr


# --- writing inside a rootfs -------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield rootfs, fd
    finally:
        os.close(fd)


def test_write_creates_and_truncates(motd_module: ModuleType, root: tuple[Path, int]) -> None:
    rootfs, fd = root
    motd_module.write_motd(fd, b"a much longer first message\n")
    motd_module.write_motd(fd, b"short\n")
    assert (rootfs / "etc" / "motd").read_bytes() == b"short\n"
    assert (rootfs / "etc" / "motd").stat().st_mode & 0o777 == 0o644


def test_write_creates_etc(motd_module: ModuleType, root: tuple[Path, int]) -> None:
    rootfs, fd = root
    (rootfs / "etc").rmdir()
    motd_module.write_motd(fd, b"hi\n")
    assert (rootfs / "etc" / "motd").read_bytes() == b"hi\n"


@pytest.mark.parametrize("target", ["ABS", "../../../../../../../../OUT"])
def test_symlink_stays_inside_rootfs(
    motd_module: ModuleType, root: tuple[Path, int], tmp_path: Path, target: str
) -> None:
    rootfs, fd = root
    outside = tmp_path / "outside-motd"
    outside.write_bytes(b"host file\n")
    inside = rootfs / str(outside).lstrip("/")
    inside.parent.mkdir(parents=True)
    link = str(outside) if target == "ABS" else target.replace("OUT", str(outside).lstrip("/"))
    (rootfs / "etc" / "motd").symlink_to(link)
    motd_module.write_motd(fd, b"hi\n")
    assert outside.read_bytes() == b"host file\n"
    # The link was followed as the container would see it: inside the rootfs.
    assert inside.read_bytes() == b"hi\n"


def test_refuses_fifo_and_hard_link(motd_module: ModuleType, root: tuple[Path, int]) -> None:
    rootfs, fd = root
    motd = rootfs / "etc" / "motd"
    os.mkfifo(motd)
    with pytest.raises(OSError, match="not a regular file"):
        motd_module.write_motd(fd, b"hi\n")
    motd.unlink()
    other = rootfs / "etc" / "issue"
    other.write_bytes(b"keep\n")
    os.link(other, motd)
    with pytest.raises(OSError, match="hard links"):
        motd_module.write_motd(fd, b"hi\n")
    assert other.read_bytes() == b"keep\n"


# --- a real container --------------------------------------------------------------------------


def _handles(env: dict[str, str], tmp_path: Path, line: str) -> bool:
    """Whether lxcframe, with the plugins it has, handles a config line (known and not unhandled)."""
    probe = tmp_path / "probe.conf"
    probe.write_text(f"lxc.rootfs.path = dir:{tmp_path}\n{line}\n")
    result = run_cli("config", "validate", "--format", "json", str(probe), env=env)
    return result.returncode == 0 and not json.loads(result.stdout)["unhandled"]


def _static_busybox() -> bool:
    return any(os.path.isfile(p) for p in ("/bin/busybox", "/usr/bin/busybox"))


@pytest.mark.container
def test_container_gets_motd(motd_module: ModuleType, cli_env: dict[str, str], tmp_path: Path) -> None:
    lxcpath = str(tmp_path / "lxc")
    extra = tmp_path / "motd.conf"
    lines = "motd.text = Welcome to m1.\nmotd.line = Managed by lxcframe.\n"
    if _handles(cli_env, tmp_path, "lxc.cgroup.relative = 1"):
        lines += "lxc.cgroup.relative = 1\n"  # stay below this test's own cgroup
    extra.write_text(lines)
    result = run_cli("-P", lxcpath, "create", "m1", "-t", "busybox", "-f", str(extra), env=cli_env)
    assert result.returncode == 0, result.stderr
    try:
        result = run_cli("-P", lxcpath, "execute", "m1", "--", "cat", "/etc/motd", env=cli_env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "Welcome to m1.\nManaged by lxcframe.\n"
        # Disabled, its keys stop the start (as LXC refuses keys it cannot apply), naming the plugin.
        rootfs = os.path.join(lxcpath, "m1", "rootfs")
        os.unlink(os.path.join(rootfs, "etc", "motd"))
        result = run_cli("-P", lxcpath, "-p", "no:motd", "execute", "m1", "--", "/bin/true", env=cli_env)
        assert result.returncode == 1
        assert "motd.text" in result.stderr and "plugin 'motd'" in result.stderr
        # A host that opted out (unhandled_keys = "warn") starts it: the plugin writes nothing, the
        # keys are reported with its name, not ignored silently.
        Path(cli_env["LXCFRAME_HOST_CONFIG"]).write_text('[plugins]\nunhandled_keys = "warn"\n')
        result = run_cli("-P", lxcpath, "-p", "no:motd", "execute", "m1", "--", "/bin/true", env=cli_env)
        assert result.returncode == 0, result.stderr
        assert "motd.text" in result.stderr and "plugin 'motd'" in result.stderr
        assert not os.path.exists(os.path.join(rootfs, "etc", "motd"))
    finally:
        destroyed = run_cli("-P", lxcpath, "destroy", "-f", "m1", env=cli_env)
    assert destroyed.returncode == 0, destroyed.stderr
    assert not os.path.exists(os.path.join(lxcpath, "m1"))
    run = cli_env["LXCFRAME_RUNDIR"]
    with ended_processes_of(run):
        pass  # the server the commands went through leaves, and takes its socket and lock with it
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(run) for f in files] if os.path.isdir(run) else []
    assert leftovers == []
