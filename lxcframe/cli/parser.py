"""The argument parser of ``lxcframe``: verbs named like the lxc-* tools."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from lxcframe.version import __version__


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    # On subcommands the defaults are suppressed so that an option given before the verb survives.
    default = (lambda value: value) if top else (lambda _value: argparse.SUPPRESS)
    parser.add_argument("-P", "--lxcpath", default=default(None),
                        help="container directory (default: host config, else /var/lib/lxcframe)")
    parser.add_argument("-p", dest="plugin_opts", action="append", default=default([]), metavar="no:NAME",
                        help="disable plugin NAME for this command (repeatable)")
    parser.add_argument("--format", choices=("text", "json"), default=default("text"),
                        help="output format of listings")
    parser.add_argument("--debug", action="store_true", default=default(False),
                        help="show tracebacks and debug logs")
    parser.add_argument("--log-level", default=default(None), help="log level on stderr (trace … fatal)")
    parser.add_argument("--log-file", default=default(None), help="write logs to this file")
    parser.add_argument("--log-format", choices=("console", "json"), default=default(None))
    parser.add_argument("--trace-plugins", action="store_true", default=default(False),
                        help="log every hook call with its plugins and durations (at info level)")
    parser.add_argument("--host-config", default=default(None),
                        help="host config file (default: $LXCFRAME_HOST_CONFIG or /etc/lxcframe/lxcframe.toml)")


def _command(parser: argparse.ArgumentParser, nargs: str = "+") -> None:
    parser.add_argument("cmd", nargs=nargs, metavar="-- CMD", help="command and arguments")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, every verb is listed but only that one gets its arguments
    (a command builds the one it runs: the others' ~200 arguments cost every command ~7 ms)."""
    parser = argparse.ArgumentParser(prog="lxcframe", description="Linux containers, every feature a plugin.")
    parser.add_argument("--version", action="version", version=f"lxcframe {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, fill in VERBS:
        verb = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            _common(verb, top=False)
            fill(verb)
    return parser


#: The whole parser, built once by a warm process (the server) for the workers it forks: ~15 ms of
#: every thin client's command (argparse, and gettext looking for catalogues at each help string).
_WARM: list[argparse.ArgumentParser] = []


def keep_warm() -> None:
    _WARM[:] = [build_parser()]


def parser_for(verb: str | None) -> argparse.ArgumentParser:
    """The parser of a command running ``verb``: the warm one, else built for that verb alone."""
    return _WARM[0] if _WARM else build_parser(only=verb)


def _verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", action="store_true",
                   help="wrap long cells onto more lines instead of cutting them at the terminal's width")


def _check(p: argparse.ArgumentParser) -> None:
    _verbose(p)
    p.epilog = ("exit status: 0 when every required fact of every enabled plugin is there, 1 when one is "
                "missing, a plugin failed to load or its check failed; a fact shown 'no (optional)' (a "
                "fallback, keys ignored as LXC does) does not fail it; a plugin disabled with -p no:NAME "
                "is not probed")


def _config(config: argparse.ArgumentParser) -> None:
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        # The common options work after the action too: `config validate FILE --format json`.
        p = config_sub.add_parser(name, help=help_text, description=help_text)
        _common(p, top=False)
        return p

    p = action("validate", "check a config file")
    p.add_argument("file")
    p = action("get", "print a key of a container's config")
    p.add_argument("name")
    p.add_argument("key")
    p = action("set", "set a key in a container's config (comments kept)")
    p.add_argument("name")
    p.add_argument("key")
    p.add_argument("value")
    p = action("keys", "list every config key with its plugin and what it means")
    p.add_argument("--plugin", metavar="NAME", help="only the keys of plugin NAME")


def _create(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("-t", "--template", default="busybox")
    p.add_argument("--rootfs", help="directory (dir template) or archive (tar template)")
    p.add_argument("-f", "--config", help="config file whose lines are added to the new config")
    p.add_argument("template_args", nargs="*", metavar="-- ARGS")


def _start(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("-F", "--foreground", action="store_true", help="stay attached until it stops")
    _command(p, "*")


def _stop(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("-k", "--kill", action="store_true", help="kill at once")
    p.add_argument("-t", "--timeout", type=float, default=60.0, help="seconds before killing (default 60)")


def _reboot(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("-t", "--timeout", type=float, default=-1.0,
                   help="seconds to wait for it to run again (default: no end; 0: do not wait)")


def _execute(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?")
    p.add_argument("-f", "--rcfile", help="config file (instead of a created container)")
    p.add_argument("-n", dest="name_opt", help="container name (with -f)")
    _command(p, "*")


def _attach(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("--clear-env", action="store_true")
    p.add_argument("-u", "--uid", type=int)
    p.add_argument("-g", "--gid", type=int)
    p.add_argument("-v", "--set-var", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--pass-fd", action="append", type=int, default=[], metavar="FD",
                   help="keep this descriptor of the caller open in the command (others are closed)")
    _command(p, "*")


def _destroy(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("-f", "--force", action="store_true", help="kill it first if running")


def _name_only(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")


def _ls(p: argparse.ArgumentParser) -> None:
    _verbose(p)
    p.add_argument("--fancy", action="store_true", help="a table with state and pid")


def _wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("state")
    p.add_argument("-t", "--timeout", type=float, default=-1)


def _monitor(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="regular expression a name must match (default: all)")


def _mount(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("source")
    p.add_argument("target", help="absolute path inside the container (created if missing)")
    p.add_argument("-t", "--type", dest="fstype", help="filesystem type (default: a bind mount)")
    p.add_argument("-o", "--options", default="", help="mount options, comma-separated (ro, rbind, size=…)")


def _umount(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("target")
    p.add_argument("-l", "--lazy", action="store_true", help="detach (MNT_DETACH)")


def _console(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("-t", "--tty", dest="ttynum", type=int, default=-1,
                   help="tty number (0: the console; default: the first free tty)")
    p.add_argument("-e", "--escape", default="^a", help="escape character: ESCAPE q detaches (default ^a)")


def _cgroup(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("key", help="a file of the container's cgroup: CONTROLLER.FILE (pids.max, memory.max)")
    p.add_argument("value", nargs="?", help="written to the file; without it, the file's text is printed")


def _autostart(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", dest="all_groups", action="store_true",
                   help="every autostart container, whatever its groups")
    p.add_argument("-A", "--ignore-auto", action="store_true", help="every container, lxc.start.auto or not")
    p.add_argument("-g", "--groups", action="append", default=[], metavar="GROUP[,GROUP...]",
                   help="the groups to take, in order (repeatable; an empty name is the NULL group, the "
                        "default)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("-s", "--shutdown", dest="action", action="store_const", const="shutdown",
                      help="shut them down (killed after the timeout)")
    what.add_argument("-k", "--kill", dest="action", action="store_const", const="kill", help="kill them")
    what.add_argument("-r", "--reboot", dest="action", action="store_const", const="reboot", help="reboot them")
    p.set_defaults(action="start")
    p.add_argument("-L", "--list", action="store_true",
                   help="only list the containers it would act on (with lxc.start.delay for a start or reboot)")
    p.add_argument("-t", "--timeout", type=_seconds, default=60,
                   help="a shutdown's seconds before killing (default 60)")


def _seconds(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected whole seconds, 0 or more: {value!r}")
    return number


def _copy(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("-N", "--newname", help="the copy's name (with -e, default: NAME_ and six random characters)")
    p.add_argument("--newpath", help="the copy's lxcpath (default: the source's)")
    p.add_argument("-s", "--snapshot", action="store_true", help="an overlay snapshot instead of a whole copy")
    p.add_argument("-K", "--keepname", action="store_true", help="keep lxc.uts.name")
    p.add_argument("-M", "--keepmac", action="store_true", help="keep every lxc.net.N.hwaddr")
    p.add_argument("-R", "--rename", action="store_true", help="rename the container instead of copying it")
    p.add_argument("-e", "--ephemeral", action="store_true",
                   help="an overlay snapshot started at once and destroyed when it stops (lxc.ephemeral = 1)")
    p.add_argument("-D", "--keepdata", action="store_true", help="with -e: keep the copy when it stops")
    p.add_argument("-d", "--daemon", action="store_true",
                   help="with -e: start it in the background (default: in the foreground until it stops)")
    _command(p, "*")


def _snapshot(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    what = p.add_mutually_exclusive_group()
    what.add_argument("-L", "--list", action="store_true", help="list the snapshots (name, directory, time)")
    what.add_argument("-r", "--restore", metavar="SNAP", help="make the container of SNAP again (over NAME, or -N)")
    what.add_argument("-d", "--destroy", metavar="SNAP", help="remove SNAP (ALL: every snapshot)")
    p.add_argument("-C", "--showcomments", action="store_true", help="with -L: each snapshot's comment too")
    p.add_argument("-N", "--newname", help="with -r: a new container beside NAME instead")
    p.add_argument("-c", "--comment", metavar="FILE", help="keep FILE's text as the new snapshot's comment")


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("action", choices=("add", "del"))
    p.add_argument("device", help="a device node (/dev/...) or a network interface: the host's for add, the "
                                  "container's for del")
    p.add_argument("target", nargs="?", help="its path or name on the other side (default: the same)")


def _nothing(_p: argparse.ArgumentParser) -> None:
    pass


#: Each verb, named like the lxc-* tool it matches: its help and what fills its parser.
VERBS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("plugins", "list plugins with their state, hooks and extensions", _verbose),
    ("extensions", "list the API extensions this host provides", _nothing),
    ("check", "what this host supports, and why not", _check),
    ("config", "validate, read or write container config", _config),
    ("create", "create a container from a template", _create),
    ("start", "start a container", _start),
    ("stop", "stop a container", _stop),
    ("execute", "run a command as an application container", _execute),
    ("attach", "run a command in a running container", _attach),
    ("destroy", "remove a container", _destroy),
    ("info", "show a container's state", _name_only),
    ("ls", "list containers", _ls),
    ("wait", "wait for a container state", _wait),
    ("monitor", "print every state change of containers until interrupted", _monitor),
    ("mount", "mount into a running container", _mount),
    ("umount", "unmount inside a running container", _umount),
    ("console", "connect the terminal to a container's tty", _console),
    ("freeze", "freeze a container's processes", _name_only),
    ("unfreeze", "unfreeze a container's processes", _name_only),
    ("cgroup", "read or write a cgroup file of a running container", _cgroup),
    ("reboot", "reboot a running container (lxc.signal.reboot) and wait until it runs again", _reboot),
    ("autostart", "start, shut down, kill or reboot the containers marked lxc.start.auto, in lxc.start.order",
     _autostart),
    ("copy", "copy a stopped container, or start an ephemeral copy of it (-e)", _copy),
    ("snapshot", "take, list, restore or remove snapshots of a stopped container", _snapshot),
    ("device", "add a device node or a host network interface to a running container, or take it out",
     _device),
)
