"""Files a config points at are read within bounds: never a FIFO, a device or an endless fan-out.

The attacker writes (or gets an admin to include) a config whose ``lxc.include``, ``lxc.seccomp.profile``
or ``lxc.console.logfile`` names something that never ends: a FIFO (the open blocks), /dev/zero (a read
that fills memory), or includes that multiply. ``config validate`` and ``start`` must answer at once with
an error naming the file, line and key, instead of hanging or eating the host's memory.

Every command runs as a subprocess with a timeout and an address-space limit, so a regression fails the
test rather than hanging the suite or the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from lxcframe.input_limits import (
    MAX_BYTES_PER_LOAD,
    MAX_FILE_BYTES,
    MAX_FILE_LINES,
    MAX_FILES_PER_LOAD,
    MAX_INCLUDE_DEPTH,
)

#: Far above what a config load needs, far below what the VM has: a read of /dev/zero hits it quickly.
_MEMORY_LIMIT = 1 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT, _MEMORY_LIMIT))


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([sys.executable, "-m", "lxcframe", *args], capture_output=True, text=True,
                              timeout=timeout, check=False, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        pytest.fail(f"lxcframe {' '.join(args)} did not answer within {timeout} s")


def _validate(config: Path) -> subprocess.CompletedProcess[str]:
    return _cli("config", "validate", str(config))


def _refused(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr, result.stderr
    # A start its monitor refuses: the monitor's own report of it reaches the caller's stderr first.
    lines = [line for line in result.stderr.splitlines() if " ERROR    monitor - start failed " not in line]
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.conf"
    os.mkfifo(path)
    return path


def _config(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "config"
    path.write_text("lxc.uts.name = c1\n" + "".join(line + "\n" for line in lines))
    return path


# --- lxc.include ---------------------------------------------------------------------------------------


def test_include_of_a_fifo_is_refused_at_once(tmp_path, fifo):
    config = _config(tmp_path, f"lxc.include = {fifo}")
    _refused(_validate(config), f"{config}:2: lxc.include", "FIFO")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_include_of_a_device_is_refused(tmp_path, device):
    config = _config(tmp_path, f"lxc.include = {device}")
    _refused(_validate(config), f"{config}:2: lxc.include", "character device")


def test_fifo_in_an_included_directory_is_refused(tmp_path):
    confd = tmp_path / "conf.d"
    confd.mkdir()
    (confd / "a.conf").write_text("lxc.environment = A=1\n")
    os.mkfifo(confd / "b.conf")
    config = _config(tmp_path, f"lxc.include = {confd}")
    _refused(_validate(config), f"{config}:2: lxc.include", "b.conf", "FIFO")


def test_the_config_itself_may_not_be_a_fifo(fifo):
    _refused(_validate(fifo), str(fifo), "FIFO")


def test_exponential_fan_out_of_includes_stops_at_the_file_cap(tmp_path):
    levels = 40
    for level in range(levels):
        include = f"lxc.include = {tmp_path}/level{level + 1}.conf\n" if level + 1 < levels else ""
        (tmp_path / f"level{level}.conf").write_text(f"lxc.environment = L{level}=1\n{include}{include}")
    config = _config(tmp_path, f"lxc.include = {tmp_path}/level0.conf")
    _refused(_validate(config), "lxc.include", f"more than {MAX_FILES_PER_LOAD} files")


def _chain(tmp_path: Path, length: int) -> Path:
    """config -> f1 -> f2 -> … -> f<length>: ``length`` nested includes."""
    for index in range(1, length + 1):
        nxt = f"lxc.include = {tmp_path}/f{index + 1}.conf\n" if index < length else ""
        (tmp_path / f"f{index}.conf").write_text(f"lxc.environment = F{index}=1\n{nxt}")
    return _config(tmp_path, f"lxc.include = {tmp_path}/f1.conf")


def test_include_depth_at_the_cap_is_accepted(tmp_path):
    result = _validate(_chain(tmp_path, MAX_INCLUDE_DEPTH))
    assert result.returncode == 0, result.stderr


def test_include_depth_beyond_the_cap_is_refused(tmp_path):
    _refused(_validate(_chain(tmp_path, MAX_INCLUDE_DEPTH + 1)), "lxc.include",
             f"nested deeper than {MAX_INCLUDE_DEPTH}")


def test_an_included_file_over_the_size_cap_is_refused(tmp_path):
    big = tmp_path / "big.conf"
    big.write_text("#" * MAX_FILE_BYTES + "\n")
    config = _config(tmp_path, f"lxc.include = {big}")
    _refused(_validate(config), f"{config}:2: lxc.include", f"larger than {MAX_FILE_BYTES} bytes")


def test_an_included_file_over_the_line_cap_is_refused(tmp_path):
    long = tmp_path / "long.conf"
    long.write_text("#\n" * (MAX_FILE_LINES + 1))
    config = _config(tmp_path, f"lxc.include = {long}")
    _refused(_validate(config), f"{config}:2: lxc.include", f"more than {MAX_FILE_LINES} lines")


def test_the_same_large_file_included_again_and_again_stops_at_the_load_cap(tmp_path):
    part = tmp_path / "part.conf"
    part.write_text(("#" * 999 + "\n") * (MAX_FILE_BYTES // 1000))  # just under both per-file caps
    repeats = MAX_BYTES_PER_LOAD // part.stat().st_size + 1
    config = _config(tmp_path, *[f"lxc.include = {part}"] * repeats)
    _refused(_validate(config), "lxc.include", f"more than {MAX_BYTES_PER_LOAD} bytes")


# --- lxc.seccomp.profile -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "big"])
def test_seccomp_profile_must_be_a_bounded_regular_file(tmp_path, fifo, target):
    if target == "fifo":
        profile, why = str(fifo), "FIFO"
    elif target == "big":
        big = tmp_path / "big.seccomp"
        big.write_text("2\nblacklist\n" + "#" * MAX_FILE_BYTES + "\n")
        profile, why = str(big), f"larger than {MAX_FILE_BYTES} bytes"
    else:
        profile, why = target, "character device"
    config = _config(tmp_path, f"lxc.seccomp.profile = {profile}")
    _refused(_validate(config), f"{config}:2: lxc.seccomp.profile", why)


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_mount_fstab_must_be_a_bounded_regular_file(tmp_path, fifo, target):
    fstab = str(fifo) if target == "fifo" else target
    config = _config(tmp_path, f"lxc.mount.fstab = {fstab}")
    _refused(_validate(config), f"{config}:2: lxc.mount.fstab", "FIFO" if target == "fifo" else "character device")


# --- lxc.console.logfile -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["fifo", "/dev/null", "directory"])
def test_console_logfile_that_is_not_a_regular_file_fails_the_start_at_once(make_container, host, tmp_path,
                                                                           target):
    if target == "fifo":
        logfile = tmp_path / "console.fifo"
        os.mkfifo(logfile)
        why = "FIFO"
    elif target == "directory":
        logfile = tmp_path / "console.d"
        logfile.mkdir()
        why = "directory"
    else:
        logfile, why = Path(target), "character device"
    container = make_container("log1", config=(("lxc.console.logfile", str(logfile)),))
    try:
        result = _cli("-P", container.lxcpath, "start", container.name)
    finally:
        if target == "fifo":
            # On a runtime that opens the FIFO blocking, a reader lets the stuck monitor go on, so the
            # fixture can destroy the container; our own end is closed again right away.
            os.close(os.open(logfile, os.O_RDONLY | os.O_NONBLOCK))
    _refused(result, "lxc.console.logfile", why)
    assert container.state == "STOPPED"
    host.assert_clean()


def test_console_logfile_symlink_is_refused(make_container, host, tmp_path):
    # The log file is reopened when it rotates; a link planted there must not redirect it.
    target = tmp_path / "elsewhere"
    target.write_text("keep me\n")
    link = tmp_path / "console.log"
    link.symlink_to(target)
    container = make_container("log2", config=(("lxc.console.logfile", str(link)),))
    _refused(_cli("-P", container.lxcpath, "start", container.name), "lxc.console.logfile", "symbolic link")
    assert container.state == "STOPPED"
    assert target.read_text() == "keep me\n"
    host.assert_clean()
