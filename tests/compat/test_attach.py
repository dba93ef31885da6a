"""attach and attach_wait against python3-lxc: payloads, callables, statuses, options."""

from tests.compat.differential import assert_same, split_off


def test_attach_matches_python3_lxc(differential):
    real, compat = differential("attach.py", "compat-attach")
    assert ("attach_run_command exit 7", repr(7 << 8)) in real.entries
    assert ("attach_run_command exit 255", "-1") in real.entries
    # The one documented difference (docs/compat.md): the attached command runs under the sealed init,
    # which exits 128 + N when a signal N killed the command, where liblxc's raw status says "killed by N".
    real_killed, real = split_off(real, "attach_run_command killed")
    compat_killed, compat = split_off(compat, "attach_run_command killed")
    assert (real_killed, compat_killed) == ("9", repr((128 + 9) << 8))
    assert_same(real, compat)
