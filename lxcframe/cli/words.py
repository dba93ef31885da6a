"""The command line's verbs by name, and which one a command line runs: read before anything else is
imported, to decide where the command runs (:mod:`lxcframe.thin_client`) and which verb's arguments to build."""

from __future__ import annotations

#: Every verb, named like the lxc-* tool it matches, in the order the help lists them.
VERB_NAMES = ("plugins", "extensions", "check", "config", "create", "start", "stop", "execute", "attach",
              "destroy", "info", "ls", "wait", "monitor", "mount", "umount", "console", "freeze", "unfreeze",
              "cgroup", "reboot", "autostart", "copy", "snapshot", "device")

#: The common options that take a value as the next word.
VALUED = frozenset(("-P", "--lxcpath", "-p", "--format", "--log-level", "--log-file", "--log-format",
                    "--host-config"))


def verb_of(args: list[str]) -> str | None:
    """The verb ``args`` run (the first word that names one, after the values of the options that
    take one), or ``None`` when none is there."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in VALUED:
            skip = True
        elif not arg.startswith("-"):
            return arg if arg in VERB_NAMES else None
    return None
