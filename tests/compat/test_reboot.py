"""reboot against python3-lxc: the signal sent, the container back with a new init, a stopped one refused."""

from tests.compat.differential import assert_same


def test_reboot_matches_python3_lxc(differential):
    real, compat = differential("reboot.py", "compat-reboot")
    # LXC did reboot its container: another init, twice, running, with the rootfs it had.
    assert ("reboot", "True") in real.entries
    assert ("back with a new init", "True") in real.entries
    assert ("a third init", "True") in real.entries
    assert ("the rootfs kept", "(0, 'kept\\n')") in real.entries
    assert ("reboot stopped", "False") in real.entries
    assert_same(real, compat)
