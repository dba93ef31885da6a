"""The LXC keys lxcframe does not handle yet: real LXC keys (asked of liblxc itself), declared by no
builtin plugin, the same list in the code and in docs/features.md, and together with the builtins'
keys covering every container key liblxc knows.

liblxc (the ``lxc`` package, installed by scripts/setup-host.sh) is the independent oracle: its
``lxc_config_item_is_supported`` answers for a key, and its table of key names is read from the
library's own strings.
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pytest

from lxcframe.config.lxc_keys import NOT_SUPPORTED_YET, UNSUPPORTED_LXC_KEYS
from lxcframe.config.model import load_text
from lxcframe.plugin_manager import Plugins

FEATURES = Path(__file__).parent.parent / "docs" / "features.md"
SECTION = "## LXC keys lxcframe does not handle yet"
LIBLXC = "liblxc.so.1"


def liblxc() -> ctypes.CDLL:
    try:
        return ctypes.CDLL(LIBLXC)
    except OSError as err:
        pytest.fail(f"{LIBLXC} is not installed (scripts/setup-host.sh installs lxc): {err}")


def lxc_supports(key: str) -> bool:
    supported = liblxc().lxc_config_item_is_supported
    supported.argtypes, supported.restype = [ctypes.c_char_p], ctypes.c_bool
    return bool(supported(key.encode()))


def sample(pattern: str) -> str:
    """A concrete key a pattern covers (``lxc.namespace.share.*`` -> ``lxc.namespace.share.net``)."""
    return pattern.replace("<N>", "0").replace(".*", ".net")


def documented() -> list[str]:
    text = FEATURES.read_text()
    section = text.split(SECTION + "\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- `([^`]+)`", section, re.MULTILINE)


def test_docs_list_exactly_the_unsupported_keys() -> None:
    assert documented() == list(UNSUPPORTED_LXC_KEYS)


@pytest.mark.parametrize("pattern", UNSUPPORTED_LXC_KEYS)
def test_each_unsupported_key_is_lxcs_and_no_builtins(pattern: str) -> None:
    # liblxc answers for its table's entries exactly: a family of keys is its prefix (lxc.namespace.share.).
    assert lxc_supports(pattern.removesuffix("*")), f"liblxc does not know {pattern}"
    registry = Plugins(environ={}).key_registry()
    assert registry.lookup(sample(pattern)) is None, f"{pattern} is declared: take it off the list"
    assert registry.inactive_owner(sample(pattern)) == ("", NOT_SUPPORTED_YET)


def liblxc_keys() -> list[str]:
    """The container keys of liblxc's config table: its ``lxc.`` strings that it says it supports
    (a family of keys is there as its prefix, e.g. ``lxc.net.``)."""
    liblxc()
    with open("/proc/self/maps") as maps:  # the file the loader mapped, wherever the distribution put it
        path = next(line.split()[-1] for line in maps if "/liblxc.so" in line)
    strings = re.findall(rb"(?<=\0)lxc\.[a-z0-9_.]+(?=\0)", Path(path).read_bytes())
    return [name for name in sorted({s.decode() for s in strings}) if lxc_supports(name)]


def test_every_lxc_key_is_handled_or_listed() -> None:
    registry = Plugins(environ={}).key_registry()
    keys = liblxc_keys()
    assert "lxc.uts.name" in keys and "lxc.selinux.context" in keys and len(keys) > 80, keys
    # lxc.include is the config reader's own; the rest is a plugin's or listed as not handled yet.
    missing = [key for key in keys if key != "lxc.include" and not key.endswith(".")
               and registry.lookup(key) is None and registry.inactive_owner(key) is None]
    prefixes = [key for key in keys if key.endswith(".")
                and registry.lookup(key + "net") is None and registry.inactive_owner(key + "net") is None]
    assert (missing, prefixes) == ([], [])


def test_an_unsupported_key_loads_set_aside_with_the_reason() -> None:
    config = load_text("lxc.uts.name = a\nlxc.selinux.context = system_u:system_r:lxc_t:s0\n",
                       Plugins(environ={}).key_registry(), path="/c/config")
    [item] = config.unhandled
    assert (item.key, item.plugin, item.line) == ("lxc.selinux.context", "", 2)
    assert item.describe() == "/c/config:2: lxc.selinux.context: " + NOT_SUPPORTED_YET
    assert str(item.as_error()) == ("/c/config:2: lxc.selinux.context: an LXC key lxcframe does not support yet "
                                    "(see docs/features.md): the container would run without it")


def test_a_disabled_builtins_key_names_that_plugin() -> None:
    registry = Plugins(["seccomp", "apparmor"], environ={}).key_registry()
    assert registry.why_not_handled("lxc.seccomp.profile") == (
        "handled by plugin 'seccomp', which is disabled on this host")
    assert registry.why_not_handled("lxc.apparmor.profile") == (
        "handled by plugin 'apparmor', which is disabled on this host")
    # Still not handled with seccomp on: the reason does not depend on the plugin.
    assert registry.why_not_handled("lxc.seccomp.notify.proxy") == NOT_SUPPORTED_YET


def test_a_key_lxc_does_not_have_is_unknown() -> None:
    registry = Plugins(environ={}).key_registry()
    assert not lxc_supports("lxc.apparmor.bogus")
    assert registry.why_not_handled("lxc.apparmor.bogus") == "unknown key (did you mean 'lxc.apparmor.raw'?)"
