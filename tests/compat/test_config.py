"""The config calls against python3-lxc: conversions, KeyError, read-back and roll-back, saving."""

from tests.compat.differential import assert_same


def test_config_calls_match_python3_lxc(differential):
    real, compat = differential("config.py", "compat-config")
    assert ("read the list", "['A=1', 'B=2']") in real.entries
    assert ("not in the file before save_config", "False") in real.entries
    assert_same(real, compat)
