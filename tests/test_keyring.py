"""The session keyring of a container's init: a new one by default (``lxc.keyring.session = 1``), the
caller's own with ``lxc.keyring.session = 0``; read from inside with keyctl(2) by a static helper."""

from __future__ import annotations

import shutil

import pytest

from lxcframe import syscalls
from lxcframe.container import Container

from .conftest import compile_static
from .test_lifecycle import capture

pytestmark = pytest.mark.container

ROOT_MAP = (("lxc.idmap", "u 0 100000 65536"), ("lxc.idmap", "g 0 100000 65536"))

#: Prints the serial of the session keyring and its description ("keyring;UID;GID;PERM;NAME").
PROBE = r"""
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(void) {
    char desc[256] = {0};
    long serial = syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* KEY_SPEC_SESSION_KEYRING */, 0);
    if (serial < 0) { perror("keyctl get"); return 2; }
    if (syscall(SYS_keyctl, 6 /* DESCRIBE */, serial, desc, sizeof desc - 1) < 0) {
        perror("keyctl describe");
        return 3;
    }
    printf("%ld %s\n", serial, desc);
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> str:
    return compile_static(tmp_path_factory.mktemp("keyring"), "keyring-probe", PROBE)


def _session_keyring_of_the_command(container: Container, probe: str) -> tuple[int, str]:
    """Serial and description of the session keyring an executed command (init's child) has."""
    shutil.copy(probe, f"{container.load_config().get('lxc.rootfs.path')}/keyring-probe")
    code, out = capture(container, "/keyring-probe", execute=True)
    assert code == 0, out
    serial, description = out.split()
    return int(serial), description


@pytest.mark.parametrize("setting", [(), (("lxc.keyring.session", "1"),)], ids=["default", "session=1"])
def test_a_container_gets_a_new_session_keyring_of_its_own(make_container, probe, setting):
    caller = syscalls.session_keyring_id()
    container = make_container("keys1", config=setting)
    serial, description = _session_keyring_of_the_command(container, probe)
    assert serial != caller
    kind, uid, gid, _perm, name = description.split(";")
    assert (kind, uid, gid, name) == ("keyring", "0", "0", "_ses")
    again, _ = _session_keyring_of_the_command(container, probe)
    assert again not in (serial, caller), "each start gets a fresh keyring"


def test_session_0_keeps_the_callers_session_keyring(make_container, probe):
    caller = syscalls.session_keyring_id()
    container = make_container("keys0", config=(("lxc.keyring.session", "0"),))
    serial, description = _session_keyring_of_the_command(container, probe)
    assert serial == caller
    assert not description.endswith(";_ses")


def _keyrings_seen(out: str) -> set[int]:
    return {int(line.split()[0], 16) for line in out.splitlines() if " keyring " in line and "_ses" in line}


def test_an_unprivileged_container_gets_a_new_session_keyring(make_container):
    host_serial = syscalls.session_keyring_id()
    container = make_container("keys", config=ROOT_MAP)
    code, out = capture(container, "/bin/sh", "-c", "cat /proc/keys", execute=True)
    assert code == 0
    seen = _keyrings_seen(out)
    assert seen and host_serial not in seen
