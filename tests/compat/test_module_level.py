"""Module-level names of lxcframe.compat.lxc against python3-lxc's."""

from tests.compat.differential import assert_same


def test_constants_functions_and_classes_match_python3_lxc(differential):
    real, compat = differential("module_level.py", "compat-life")
    assert ["CLONE_NEWNS", "0x20000"] not in real.entries  # reprs are decimal: the values compare as ints
    assert ("CLONE_NEWNET", repr(0x40000000)) in real.entries
    assert_same(real, compat)
