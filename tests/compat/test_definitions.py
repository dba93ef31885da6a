"""append_config_item on multi-valued keys, get_running_config_item after the file changed,
clear_config, snapshot_restore in place and rename against python3-lxc."""

from tests.compat.differential import assert_same, split_off

#: The documented differences (docs/compat.md), python3-lxc's result first, then lxcframe's.
PINNED = {
    # liblxc's save_config writes the whole config the object holds: a line another process added to
    # the file since is lost. lxcframe writes the object's edits over the file as it is now.
    "the line added meanwhile kept": ("False", "True"),
    # liblxc restores over the container as a clone, naming it again (lxc.uts.name = its name);
    # lxcframe takes the snapshot's config as it was.
    "its uts.name after the restore": ("'compat-defs'", "'changed'"),
    # liblxc refuses to rename a container with snapshots; lxcframe moves them with it.
    "rename with a snapshot": ("False", "<Container object>"),
}


def test_definition_changes_match_python3_lxc(differential):
    real, compat = differential("definitions.py", "compat-defs", also=("compat-defs-new",))
    assert ("environment", "['A=1', 'B=2']") in real.entries
    assert ("running environment after", repr("A=1\nB=2\n")) in real.entries
    assert ("running uts.name after", "'second'") in real.entries
    assert ("snapshot_restore in place", "True") in real.entries
    assert ("the later file gone", "False") in real.entries
    assert ("the new name defined", "True") in real.entries
    assert ("its uts.name now", "'compat-defs'") in real.entries
    for label, expected in PINNED.items():
        real_result, real = split_off(real, label)
        compat_result, compat = split_off(compat, label)
        assert (real_result, compat_result) == expected, label
    assert_same(real, compat)
