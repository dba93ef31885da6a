"""The argument parser of ``lxcframe``: verbs named like the lxc-* tools."""

from __future__ import annotations

import argparse

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lxcframe", description="Linux containers, every feature a plugin.")
    parser.add_argument("--version", action="version", version=f"lxcframe {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p, top=False)
        return p

    verb("plugins", "list plugins with their state, hooks and extensions")
    verb("extensions", "list the API extensions this host provides")
    verb("check", "what this host supports, and why not").epilog = (
        "exit status: 0 when every fact of every enabled plugin is supported, 1 when one is not; "
        "a plugin disabled with -p no:NAME is not probed")

    config = verb("config", "validate, read or write container config")
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

    p = verb("create", "create a container from a template")
    p.add_argument("name")
    p.add_argument("-t", "--template", default="busybox")
    p.add_argument("--rootfs", help="directory (dir template) or archive (tar template)")
    p.add_argument("-f", "--config", help="config file whose lines are added to the new config")
    p.add_argument("template_args", nargs="*", metavar="-- ARGS")

    p = verb("start", "start a container")
    p.add_argument("name")
    p.add_argument("-F", "--foreground", action="store_true", help="stay attached until it stops")
    _command(p, "*")

    p = verb("stop", "stop a container")
    p.add_argument("name")
    p.add_argument("-k", "--kill", action="store_true", help="kill at once")
    p.add_argument("-t", "--timeout", type=float, default=60.0, help="seconds before killing (default 60)")

    p = verb("execute", "run a command as an application container")
    p.add_argument("name", nargs="?")
    p.add_argument("-f", "--rcfile", help="config file (instead of a created container)")
    p.add_argument("-n", dest="name_opt", help="container name (with -f)")
    _command(p, "*")

    p = verb("attach", "run a command in a running container")
    p.add_argument("name")
    p.add_argument("--clear-env", action="store_true")
    p.add_argument("-u", "--uid", type=int)
    p.add_argument("-g", "--gid", type=int)
    p.add_argument("-v", "--set-var", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--pass-fd", action="append", type=int, default=[], metavar="FD",
                   help="keep this descriptor of the caller open in the command (others are closed)")
    _command(p, "*")

    p = verb("destroy", "remove a container")
    p.add_argument("name")
    p.add_argument("-f", "--force", action="store_true", help="kill it first if running")

    p = verb("info", "show a container's state")
    p.add_argument("name")

    p = verb("ls", "list containers")
    p.add_argument("--fancy", action="store_true", help="a table with state and pid")

    p = verb("wait", "wait for a container state")
    p.add_argument("name")
    p.add_argument("state")
    p.add_argument("-t", "--timeout", type=float, default=-1)

    p = verb("mount", "mount into a running container")
    p.add_argument("name")
    p.add_argument("source")
    p.add_argument("target", help="absolute path inside the container (created if missing)")
    p.add_argument("-t", "--type", dest="fstype", help="filesystem type (default: a bind mount)")
    p.add_argument("-o", "--options", default="", help="mount options, comma-separated (ro, rbind, size=…)")

    p = verb("umount", "unmount inside a running container")
    p.add_argument("name")
    p.add_argument("target")
    p.add_argument("-l", "--lazy", action="store_true", help="detach (MNT_DETACH)")

    p = verb("console", "connect the terminal to a container's tty")
    p.add_argument("name")
    p.add_argument("-t", "--tty", dest="ttynum", type=int, default=-1,
                   help="tty number (0: the console; default: the first free tty)")
    p.add_argument("-e", "--escape", default="^a", help="escape character: ESCAPE q detaches (default ^a)")

    for name in ("freeze", "unfreeze"):
        p = verb(name, f"{name} a container's processes")
        p.add_argument("name")
    return parser
