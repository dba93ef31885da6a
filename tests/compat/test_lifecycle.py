"""Constructor, create, start, state, freeze, shutdown, stop, destroy and listing against python3-lxc."""

from tests.compat.differential import assert_same


def test_lifecycle_matches_python3_lxc(differential):
    real, compat = differential("lifecycle.py", "compat-life")
    # The script ran what it is meant to run: LXC created, started and destroyed its container.
    assert ("create busybox", "True") in real.entries
    assert ("state running", "'RUNNING'") in real.entries
    assert ("destroy", "True") in real.entries
    assert_same(real, compat)
