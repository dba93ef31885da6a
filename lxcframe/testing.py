"""pytest fixtures and helpers for testing lxcframe plugins, loaded by pytest only.

Installing lxcframe registers this module under pytest's ``pytest11`` entry-point group, as the
plugin ``lxcframe``: a plugin's own test suite gets the fixtures below with no conftest
(``-p no:lxcframe`` turns them off). ``lxcframe`` itself never imports this module.

* :func:`lxcframe_rundir` – a private run directory (``LXCFRAME_RUNDIR``) and host config;
* :func:`lxcframe_lxcpath` – a private container directory;
* :func:`lxcframe_plugins` – a :class:`lxcframe.Plugins` with the installed plugins plus in-process
  ones (override :func:`lxcframe_extra_plugins`);
* :func:`lxcframe_container` – a started busybox container (override
  :func:`lxcframe_container_config` for its config lines), and :func:`lxcframe_start_container`
  to start more;
* :func:`run_in` – run a command inside a running container and get what it printed;
* :func:`key_name_problems` – the key naming rule for third-party plugins.

Containers need root. Only pytest and the standard library are imported here: pytest loads this
module in every session of an environment where lxcframe is installed, so lxcframe's own modules
are imported by the fixtures that need them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lxcframe.container import Container
    from lxcframe.plugin_manager import Plugins

#: Environment variables that would make a test depend on the shell it was started from.
_CALLER_PLUGIN_SWITCHES = ("LXCFRAME_DISABLE_PLUGINS", "LXCFRAME_DISABLE_PLUGIN_AUTOLOAD", "LXCFRAME_SUPERVISOR")

#: How long teardown waits for the run directory's supervisor to leave after the last container.
SUPERVISOR_EXIT_TIMEOUT = 10.0

#: Config lines every container of :func:`lxcframe_container` gets unless overridden: its cgroups
#: are made below the test process's own, so a test run inside a CI job's or a systemd unit's
#: cgroup keeps its containers there too.
DEFAULT_CONTAINER_CONFIG: tuple[tuple[str, str], ...] = (("lxc.cgroup.relative", "1"),)


@pytest.fixture
def lxcframe_rundir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private run directory, set as ``LXCFRAME_RUNDIR`` for the test, and an empty host config.

    The host config (``LXCFRAME_HOST_CONFIG``) is ``lxcframe.toml`` beside it: write into it before
    :func:`lxcframe_plugins` is built to test a host setting. Plugin switches of the caller's shell
    (``LXCFRAME_DISABLE_PLUGINS``, ``LXCFRAME_DISABLE_PLUGIN_AUTOLOAD``, ``LXCFRAME_SUPERVISOR``) are
    removed, so the test sees every installed plugin. At teardown, waits until the run directory's
    supervisor (which starts daemon containers) has left.
    """
    rundir = tmp_path / "lxcframe-run"
    rundir.mkdir(mode=0o700)
    host_config = tmp_path / "lxcframe.toml"
    host_config.write_text("# host config of this test (see lxcframe_rundir)\n")
    monkeypatch.setenv("LXCFRAME_RUNDIR", str(rundir))
    monkeypatch.setenv("LXCFRAME_HOST_CONFIG", str(host_config))
    # The supervisor leaves this long after its last monitor: soon, so teardown need not wait long.
    monkeypatch.setenv("LXCFRAME_SUPERVISOR_IDLE", "0.2")
    for name in _CALLER_PLUGIN_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    yield rundir
    wait_for_supervisor_exit(rundir)


def wait_for_supervisor_exit(rundir: Path, timeout: float = SUPERVISOR_EXIT_TIMEOUT) -> None:
    """Wait until the supervisor of ``rundir`` has removed its socket (it leaves when idle)."""
    sock = rundir / "supervisor.sock"
    deadline = time.monotonic() + timeout
    while sock.exists():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the supervisor of {rundir} is still there after {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def lxcframe_lxcpath(tmp_path: Path, lxcframe_rundir: Path) -> Path:
    """A private, empty container directory (``-P``/``lxcpath``), with :func:`lxcframe_rundir` set up."""
    path = tmp_path / "lxcframe-containers"
    path.mkdir()
    return path


@pytest.fixture
def lxcframe_extra_plugins() -> Sequence[tuple[str, object]]:
    """In-process plugins for :func:`lxcframe_plugins`, as ``(name, module or object)`` pairs.

    Empty; override it in a test module or conftest to add plugins that are not installed::

        @pytest.fixture
        def lxcframe_extra_plugins():
            return [("recorder", Recorder())]
    """
    return ()


@pytest.fixture
def lxcframe_plugins(lxcframe_rundir: Path, lxcframe_extra_plugins: Sequence[tuple[str, object]]) -> Plugins:
    """A fresh :class:`lxcframe.Plugins`: the builtins, every installed plugin, and
    :func:`lxcframe_extra_plugins`, with the test's host config.

    Containers started with in-process plugins have their monitor forked by the test process itself
    (another process could not load those plugins), not by the supervisor.
    """
    from lxcframe.plugin_manager import Plugins

    return Plugins(extra=list(lxcframe_extra_plugins))


@pytest.fixture
def lxcframe_container_config() -> Sequence[tuple[str, str]]:
    """Config lines (``(key, value)`` pairs) of the container :func:`lxcframe_container` starts.

    :data:`DEFAULT_CONTAINER_CONFIG`; override it to set the keys of the plugin under test, keeping
    those lines::

        @pytest.fixture
        def lxcframe_container_config():
            return [*lxcframe.testing.DEFAULT_CONTAINER_CONFIG, ("motd.text", "hello")]
    """
    return DEFAULT_CONTAINER_CONFIG


@pytest.fixture
def lxcframe_start_container(
    lxcframe_lxcpath: Path, lxcframe_plugins: Plugins
) -> Iterator[Callable[..., Container]]:
    """A function ``start(name="c1", config=DEFAULT_CONTAINER_CONFIG)`` that creates a container from
    the busybox template with ``config`` lines added, starts it and returns it RUNNING.

    Every container it made is stopped and destroyed at teardown, whatever the test did (a start
    that failed leaves nothing to stop; a container already stopped or destroyed is fine).
    """
    from lxcframe.container import Container

    made: list[Container] = []

    def start(name: str = "c1", config: Iterable[tuple[str, str]] = DEFAULT_CONTAINER_CONFIG) -> Container:
        container = Container(name, str(lxcframe_lxcpath), plugins=lxcframe_plugins)
        container.create("busybox", config=tuple(config))
        made.append(container)
        container.start()
        return container

    yield start
    errors = []
    for container in reversed(made):
        try:
            _stop_and_destroy(container)
        except Exception as err:  # the others must still go; the failures are reported together
            errors.append(f"{container.name}: {type(err).__name__}: {err}")
    if errors:
        pytest.fail("teardown of containers failed: " + "; ".join(errors), pytrace=False)


def _stop_and_destroy(container: Container) -> None:
    if not container.defined:
        return  # the test destroyed it
    if container.state != "STOPPED":
        container.stop(kill=True, timeout=10)
    container.destroy()


@pytest.fixture
def lxcframe_container(
    lxcframe_start_container: Callable[..., Container], lxcframe_container_config: Sequence[tuple[str, str]]
) -> Container:
    """A RUNNING container named ``c1``: the busybox template with :func:`lxcframe_container_config`,
    started with :func:`lxcframe_plugins`; stopped and destroyed at teardown, even when the test fails."""
    return lxcframe_start_container("c1", lxcframe_container_config)


def run_in(container: Container, argv: Sequence[str], scratch: Path) -> tuple[int, bytes]:
    """Run ``argv`` in the running ``container`` (through its ``/bin/sh``); return its exit status
    and what it wrote to stdout and stderr.

    The output goes to a file created in the host directory ``scratch`` (e.g. ``tmp_path``), passed
    to the command as a descriptor: a pipe would block a command that writes more than it holds.
    """
    fd = os.open(scratch, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        # The descriptor keeps its number inside (attach's pass_fds); the shell points stdio at it.
        script = f'exec "$@" >&{fd} 2>&1'
        status = container.attach_wait(["/bin/sh", "-c", script, "sh", *argv], pass_fds=[fd])
        return status, os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)


def key_name_problems(plugin: str, keys: Iterable[str]) -> list[str]:
    """What breaks the naming rule of third-party keys, one message per key (empty when all is well).

    A third-party plugin's keys are named after the plugin: ``<plugin>.<rest>`` (``motd.text`` for
    the plugin ``motd``). ``lxc.*`` is LXC's namespace and lxcframe's builtins': a key there could
    collide with one LXC adds later. Named so, a key of the plugin when it is disabled or not
    installed is reported as belonging to it, not as an unknown key.
    """
    prefix = f"{plugin}."
    problems = []
    for key in keys:
        if key.startswith("lxc."):
            problems.append(f"{key}: lxc.* is LXC's namespace; name the key {prefix}…")
        elif not key.startswith(prefix) or len(key) == len(prefix):
            problems.append(f"{key}: a key of plugin {plugin!r} is named {prefix}<name>")
        else:
            segments = key.split(".")
            bad = [part for index, part in enumerate(segments)
                   if not (_is_word(part) or part == "<N>" or (part == "*" and index == len(segments) - 1))]
            if bad:
                # What the config reader accepts: letters, digits, '_' and '-' between the dots.
                problems.append(f"{key}: {bad[0]!r} is not a key segment (letters, digits, '_', '-'; "
                                "'<N>' for an index, a final '*' for any rest)")
    return problems


def _is_word(part: str) -> bool:
    return bool(part) and part.isascii() and all(ch.isalnum() or ch in "_-" for ch in part)


def plugin_key_names(plugin: Any) -> list[str]:
    """The names of the keys ``plugin`` (a module or object) declares with ``lxcframe_config_keys``."""
    declare = getattr(plugin, "lxcframe_config_keys", None)
    return [spec.name for spec in declare()] if callable(declare) else []


__all__ = [
    "DEFAULT_CONTAINER_CONFIG",
    "key_name_problems",
    "lxcframe_container",
    "lxcframe_container_config",
    "lxcframe_extra_plugins",
    "lxcframe_lxcpath",
    "lxcframe_plugins",
    "lxcframe_rundir",
    "lxcframe_start_container",
    "plugin_key_names",
    "run_in",
    "wait_for_supervisor_exit",
]
