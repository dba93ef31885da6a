"""Config editing on the library's Container: reading keys, writing through, edits held in memory until
saved (what start and execute see), get_keys, and the config a running container started with."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lxcframe import started_config
from lxcframe import state as st
from lxcframe.container import Container
from lxcframe.errors import ConfigError, ContainerError

pytestmark = pytest.mark.container

VETH_KEYS = ["type", "script.up", "script.down", "flags", "link", "name", "hwaddr", "mtu", "ipv6.address",
             "ipv6.gateway", "ipv4.address", "ipv4.gateway", "veth.pair"]


def config_text(container: Container) -> str:
    return Path(container.config_file_name).read_text()


def leftovers(container: Container) -> list[str]:
    """Scratch files of a save in the container's directory (there must be none after it)."""
    return [name for name in os.listdir(container.container_dir) if name.startswith(".config.")]


def rootfs_file(container: Container, inside: str) -> Path:
    return Path(container.load_config().get("lxc.rootfs.path")) / inside.lstrip("/")


# --- reading and writing through -------------------------------------------------------------------


def test_get_and_set_items_lists_and_unknown_keys(make_container):
    container = make_container("cfg1")
    assert container.get_config_item("lxc.uts.name") == "cfg1"
    assert container.get_config_values("lxc.uts.name") == ["cfg1"]
    assert container.get_config_item("lxc.init.cwd") is None
    assert container.get_config_values("lxc.init.cwd") == []

    container.set_config_item("lxc.environment", ["A=1", "B=2"])
    assert container.get_config_item("lxc.environment") == "A=1\nB=2"
    assert container.get_config_values("lxc.environment") == ["A=1", "B=2"]
    assert [line for line in config_text(container).splitlines() if line.startswith("lxc.environment")] == [
        "lxc.environment = A=1", "lxc.environment = B=2"]
    # A list replaces every value the key had.
    container.set_config_item("lxc.environment", ["C=3"])
    assert container.get_config_values("lxc.environment") == ["C=3"]
    container.set_config_item("lxc.environment", [])
    assert container.get_config_item("lxc.environment") is None
    assert "lxc.environment" not in config_text(container)

    before = config_text(container)
    with pytest.raises(ConfigError, match=r"^lxc\.uts\.name: a single-valued key takes one value, not 2$") as info:
        container.set_config_item("lxc.uts.name", ["a", "b"])
    assert info.value.key == "lxc.uts.name"
    # Every value is checked before anything is written: the file is as it was.
    with pytest.raises(ConfigError, match=r"^lxc\.environment = 'x\\ny': a config value must fit on one line"):
        container.set_config_item("lxc.environment", ["D=4", "x\ny"])
    with pytest.raises(ConfigError, match=r"^lxc\.pty\.max = 'many': expected an unsigned integer$"):
        container.set_config_item("lxc.pty.max", ["many"])
    assert config_text(container) == before

    with pytest.raises(ConfigError, match=r"^lxc\.utsname: unknown key \(did you mean 'lxc\.uts\.name'\?\)$") as info:
        container.get_config_item("lxc.utsname")
    assert info.value.key == "lxc.utsname"
    with pytest.raises(ConfigError, match=r"^lxc\.utsname: unknown key"):
        container.get_config_values("lxc.utsname")
    # One of LXC's keys no plugin applies is read back as the file holds it.
    Path(container.config_file_name).write_text(before + "lxc.sched.core = 1\n")
    assert container.get_config_item("lxc.sched.core") == "1"


# --- in memory until saved -------------------------------------------------------------------------


def test_edits_are_seen_by_this_object_and_saved_with_comments_kept(make_container, lxcpath):
    container = make_container("cfg2")
    path = Path(container.config_file_name)
    path.write_text("# kept: a comment before everything\n" + path.read_text() + "\n# kept: the last line\n")
    original = path.read_bytes()
    lines = original.decode().splitlines()

    container.append_config_item("lxc.environment", "X=1")
    container.append_config_item("lxc.environment", "Y=2")
    container.append_config_item("lxc.uts.name", "renamed")
    container.clear_config_item("lxc.cap.drop")
    assert container.has_unsaved_config
    assert path.read_bytes() == original
    assert container.get_config_values("lxc.environment") == ["X=1", "Y=2"]
    assert container.get_config_item("lxc.uts.name") == "renamed"
    assert container.get_config_item("lxc.cap.drop") is None
    # Another object of the same container reads the file alone.
    other = Container("cfg2", lxcpath)
    assert other.get_config_item("lxc.uts.name") == "cfg2"
    assert other.get_config_item("lxc.cap.drop") == "sys_module mac_admin mac_override sys_time"
    seen = container.load_config().raw_values()

    container.save_config()
    assert not container.has_unsaved_config
    saved = path.read_text().splitlines()
    assert saved[0] == lines[0] == "# kept: a comment before everything"
    # The single-valued key is replaced where it was; the cleared one is gone; a key the file did not
    # have is appended at its end.
    assert saved.index("lxc.uts.name = renamed") == lines.index("lxc.uts.name = cfg2")
    assert not [line for line in saved if line.startswith("lxc.cap.drop")]
    assert saved[-3:] == ["# kept: the last line", "lxc.environment = X=1", "lxc.environment = Y=2"]
    assert Container("cfg2", lxcpath).load_config().raw_values() == seen
    assert leftovers(container) == []

    # A write-through replaces the key's pending edits (and those below it).
    container.append_config_item("lxc.environment", "Z=3")
    container.set_config_item("lxc.environment", "W=4")
    assert not container.has_unsaved_config
    assert container.get_config_values("lxc.environment") == ["X=1", "Y=2", "W=4"]


def test_append_and_clear_refuse_unknown_keys_and_bad_values(make_container):
    container = make_container("cfg3")
    with pytest.raises(ConfigError, match=r"^lxc\.net\.0\.mtu = 'big': ") as info:
        container.append_config_item("lxc.net.0.mtu", "big")
    assert info.value.key == "lxc.net.0.mtu" and info.value.value == "big"
    with pytest.raises(ConfigError, match=r"^lxc\.network\.0\.type: unknown key"):
        container.clear_config_item("lxc.network.0.type")
    with pytest.raises(ConfigError, match=r"^lxc\.environment = 'a\\x00b': a config value must fit on one line"):
        container.append_config_item("lxc.environment", "a\0b")
    assert not container.has_unsaved_config


def test_clear_of_a_nic_a_multi_valued_key_and_get_keys(make_container):
    container = make_container("cfg4", config=(
        ("lxc.net.0.type", "veth"), ("lxc.net.0.link", "lxcfbr0"), ("lxc.net.0.ipv4.address", "192.0.2.2/24"),
        ("lxc.net.1.type", "empty"), ("lxc.net.2.flags", "up")))
    container.append_config_item("lxc.net.0.ipv4.address", "192.0.2.3/24")
    assert container.get_config_values("lxc.net.0.ipv4.address") == ["192.0.2.2/24", "192.0.2.3/24"]
    assert container.get_config_item("lxc.net.0.ipv4.address") == "192.0.2.2/24\n192.0.2.3/24"

    assert container.get_keys("lxc.net.0") == VETH_KEYS
    assert container.get_keys("lxc.net.1") == ["type", "script.up", "script.down"]
    # An entry made by another key than its type is of type empty, as in LXC.
    assert container.get_keys("lxc.net.2") == ["type", "script.up", "script.down"]
    with pytest.raises(ConfigError, match=r"^lxc\.net\.7: no network entry 7 in this config$"):
        container.get_keys("lxc.net.7")
    with pytest.raises(ConfigError, match=r"^lxc\.bogus: no key an enabled plugin handles is below this prefix$"):
        container.get_keys("lxc.bogus")
    assert container.get_keys("lxc.uts") == ["name"]
    assert container.get_keys("lxc.net.0.ipv4") == ["address", "gateway"]
    top = container.get_keys()
    assert {"lxc.net", "lxc.uts.name", "lxc.environment", "lxc.cgroup2", "lxc.rootfs.path"} <= set(top)
    assert top == sorted(top) and "lxc.sched.core" not in top and not [k for k in top if "<N>" in k or "*" in k]

    container.clear_config_item("lxc.net.0.ipv4.address")
    assert container.get_config_values("lxc.net.0.ipv4.address") == []
    assert container.get_config_item("lxc.net.0.type") == "veth"
    container.clear_config_item("lxc.net.0")
    assert container.load_config().keys_under("lxc.net.") == ["lxc.net.1.type", "lxc.net.2.flags"]
    with pytest.raises(ConfigError, match=r"^lxc\.net\.0: no network entry 0"):
        container.get_keys("lxc.net.0")
    container.save_config()
    assert "lxc.net.0" not in config_text(container)
    assert "lxc.net.1.type = empty" in config_text(container)

    without_net = Container("cfg4", container.lxcpath, disable=["netns"])
    assert "lxc.net" not in without_net.get_keys() and "lxc.uts.name" in without_net.get_keys()
    with pytest.raises(ConfigError, match=r"^lxc\.net\.1: handled by plugin 'netns', which "):
        without_net.get_keys("lxc.net.1")


def test_clear_config_drops_the_file_and_includes_when_saved(make_container, lxcpath):
    container = make_container("cfg5")
    path = Path(container.config_file_name)
    (path.parent / "extra.conf").write_text("lxc.environment = FROM_INCLUDE=1\n")
    path.write_text(path.read_text() + "# the include\nlxc.include = extra.conf\n")
    assert container.get_config_values("lxc.environment") == ["FROM_INCLUDE=1"]

    container.clear_config()
    assert container.has_unsaved_config
    assert container.get_config_item("lxc.uts.name") is None
    assert container.get_config_values("lxc.environment") == []
    assert container.load_config().raw_values() == {}
    container.append_config_item("lxc.uts.name", "fresh")
    container.save_config()
    assert path.read_text() == ("# Container cfg5, created by lxcframe from the busybox template\n"
                                "# the include\nlxc.uts.name = fresh\n")
    assert Container("cfg5", lxcpath).load_config().raw_values() == {"lxc.uts.name": ("fresh",)}
    # A write-through while everything is cleared counts as an edit of its own.
    container.clear_config()
    container.set_config_item("lxc.environment", "AFTER=1")
    assert container.load_config().raw_values() == {"lxc.environment": ("AFTER=1",)}
    assert container.has_unsaved_config


def test_an_edit_an_include_would_override_is_appended_after_it(make_container, lxcpath):
    container = make_container("cfg6")
    path = Path(container.config_file_name)
    (path.parent / "late.conf").write_text("lxc.uts.name = from-include\nlxc.environment = LATE=1\n")
    path.write_text(path.read_text() + "lxc.environment = EARLY=1\nlxc.include = late.conf\n")
    before = path.read_text()
    container.append_config_item("lxc.uts.name", "mine")
    container.append_config_item("lxc.environment", "EDIT=1")
    container.clear_config_item("lxc.cap.drop")
    seen = container.load_config().raw_values()
    assert seen["lxc.uts.name"] == ("mine",) and seen["lxc.environment"] == ("EARLY=1", "LATE=1", "EDIT=1")
    container.save_config()
    # In place, the include would set the name again and come after the new value: the edits are
    # appended after everything instead, as they were applied.
    assert path.read_text() == before + "lxc.uts.name = mine\nlxc.environment = EDIT=1\nlxc.cap.drop =\n"
    assert Container("cfg6", lxcpath).load_config().raw_values() == seen
    assert leftovers(container) == [] and not container.has_unsaved_config


def test_saving_a_cleared_config_over_a_file_that_is_no_utf8(make_container):
    container = make_container("cfg7")
    path = Path(container.config_file_name)
    path.write_bytes(b"# caf\xe9\n" + path.read_bytes())
    before = path.read_bytes()
    container.clear_config()
    with pytest.raises(ConfigError, match=rf"^{path}: not UTF-8 text \(invalid continuation byte at byte 5\)$"):
        container.save_config()
    assert path.read_bytes() == before and leftovers(container) == []
    assert container.has_unsaved_config


def test_save_to_another_path_writes_the_whole_config_flattened(make_container, tmp_path, lxcpath):
    container = make_container("cfg8")
    path = Path(container.config_file_name)
    created = [line for line in path.read_text().splitlines() if line.startswith("lxc.")]
    assert "lxc.uts.name = cfg8" in created and "lxc.cgroup.relative = 1" in created
    (path.parent / "extra.conf").write_text("lxc.environment = FROM_INCLUDE=1\n")
    path.write_text(path.read_text() + "lxc.include = extra.conf\n")
    before = path.read_bytes()
    container.append_config_item("lxc.environment", "SPACED= padded ")
    container.clear_config_item("lxc.cap.drop")
    target = tmp_path / "flat.conf"
    container.save_config(str(target))
    assert path.read_bytes() == before and container.has_unsaved_config
    # The file's lines in order less the cleared key, then the included one, then the edit (quoted,
    # as its spaces would otherwise be stripped).
    assert target.read_text().splitlines() == [
        *(line for line in created if not line.startswith("lxc.cap.drop")),
        "lxc.environment = FROM_INCLUDE=1",
        'lxc.environment = "SPACED= padded "',
    ]
    copy = Container("cfg8", lxcpath, config_path=str(target))
    assert copy.load_config().raw_values() == container.load_config().raw_values()
    assert copy.get_config_values("lxc.environment") == ["FROM_INCLUDE=1", "SPACED= padded "]


def test_an_undefined_container_holds_edits_and_set_config_path(lxcpath, tmp_path, host):
    ghost = Container("ghost", lxcpath)
    with pytest.raises(ContainerError, match=r"^ghost: no such container \(no .*/ghost/config\)$"):
        ghost.get_config_item("lxc.uts.name")
    with pytest.raises(ContainerError, match=r"^ghost: no such container"):
        ghost.save_config(str(tmp_path / "nothing.conf"))
    assert not (tmp_path / "nothing.conf").exists()
    ghost.append_config_item("lxc.uts.name", "ghost")
    assert ghost.get_config_item("lxc.uts.name") == "ghost"
    with pytest.raises(ContainerError, match=r"^ghost: no such container \(no directory for .*; create it first\)$"):
        ghost.save_config()
    ghost.save_config(str(tmp_path / "ghost.conf"))
    assert (tmp_path / "ghost.conf").read_text() == "lxc.uts.name = ghost\n"

    other = tmp_path / "other"
    ghost.set_config_path(str(other))
    assert ghost.lxcpath == str(other) and ghost.config_file_name == str(other / "ghost" / "config")
    (other / "ghost").mkdir(parents=True)
    ghost.save_config()  # the edits stayed with the object; its own config file is now the other one
    assert (other / "ghost" / "config").read_text() == "lxc.uts.name = ghost\n"
    assert ghost.defined and not ghost.has_unsaved_config
    with pytest.raises(ContainerError, match=r"^the config path must not be empty$"):
        ghost.set_config_path("")


# --- what a start uses -----------------------------------------------------------------------------


def test_a_start_uses_unsaved_edits_and_remembers_them(make_container):
    container = make_container("cfg9")
    with pytest.raises(ContainerError, match=r"^cfg9: not running$"):
        container.get_running_config_item("lxc.uts.name")
    container.append_config_item("lxc.uts.name", "edited")
    container.append_config_item("lxc.environment", "EDITED=yes")
    container.start()
    try:
        assert container.attach_wait(["/bin/sh", "-c", "hostname > /hostname.out; cat /proc/1/environ "
                                      "| tr '\\0' '\\n' | grep ^EDITED= > /env.out"]) == 0
        assert rootfs_file(container, "/hostname.out").read_text() == "edited\n"
        assert rootfs_file(container, "/env.out").read_text() == "EDITED=yes\n"
        assert container.get_running_config_item("lxc.uts.name") == "edited"
        assert container.get_running_config_item("lxc.environment") == "EDITED=yes"
        assert container.get_running_config_item("lxc.init.cwd") is None

        # The file changes; the running container's answer does not.
        container.set_config_item("lxc.uts.name", "changed")
        container.save_config()
        assert Container("cfg9", container.lxcpath).get_config_item("lxc.uts.name") == "changed"
        assert container.get_running_config_item("lxc.uts.name") == "edited"
        with pytest.raises(ConfigError, match=r"^lxc\.utsname: unknown key"):
            container.get_running_config_item("lxc.utsname")

        # What the monitor recorded is read as such: a damaged or missing record is named.
        record = started_config.config_path(container.lxcpath, "cfg9")
        kept = Path(record).read_bytes()
        assert json.loads(kept)["config"]["lxc.uts.name"] == ["edited"]
        st.write_private_file(os.path.dirname(record), st.STARTED_CONFIG_FILE, b"{")
        with pytest.raises(ContainerError, match=rf"^cfg9: malformed started config file {record}: "):
            container.get_running_config_item("lxc.uts.name")
        os.unlink(record)
        with pytest.raises(ContainerError, match=rf"^cfg9: no record of the config it started with \({record} "):
            container.get_running_config_item("lxc.uts.name")
    finally:
        container.stop(timeout=20)
    with pytest.raises(ContainerError, match=r"^cfg9: not running$"):
        container.get_running_config_item("lxc.uts.name")


def test_execute_uses_unsaved_edits(make_container):
    container = make_container("cfg10")
    container.append_config_item("lxc.environment", "EDITED=execute")
    container.clear_config_item("lxc.uts.name")
    container.append_config_item("lxc.uts.name", "exec-edited")
    assert container.execute(["/bin/sh", "-c", 'echo "$EDITED $(hostname)" > /out']) == 0
    out = rootfs_file(container, "/out")
    assert out.read_text() == "execute exec-edited\n"
    out.unlink()


def test_the_started_config_record_is_checked_as_it_is_read():
    good = started_config.encode({"lxc.uts.name": ("a",), "lxc.environment": ("X=1", "Y=2")})
    assert started_config.decode(good) == {"lxc.uts.name": ("a",), "lxc.environment": ("X=1", "Y=2")}
    with pytest.raises(ValueError, match=r"^not an lxcframe-started-config document of version 1$"):
        started_config.decode(good.replace(b'"version":1', b'"version":2'))
    with pytest.raises(ValueError, match=r"^expected format, version and a config of keys to lists of values$"):
        started_config.decode(good.replace(b'["a"]', b'"a"'))
    with pytest.raises(ValueError, match=r"^expected format, version"):
        started_config.decode(good[:-1] + b',"extra":1}')
