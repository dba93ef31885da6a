"""get_ips and get_interfaces against python3-lxc."""

from tests.compat.differential import assert_same


def test_addresses_and_interfaces_match_python3_lxc(differential):
    real, compat = differential("network.py", "compat-net")
    assert ("addresses", "('192.0.2.5', '2001:db8::5')") in real.entries
    assert ("polled until there", "('198.51.100.7',)") in real.entries
    assert_same(real, compat)
