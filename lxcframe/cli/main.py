"""Entry point of the ``lxcframe`` command. Keeps imports minimal: ``--version`` loads nothing else."""

from __future__ import annotations

import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from lxcframe.version import __version__

        print(f"lxcframe {__version__}")
        return 0
    from lxcframe.cli.parser import build_parser

    # Everything after the first "--" is the command (or template arguments), verbatim: argparse
    # alone would let an option between NAME and "--" strand the command.
    tail: list[str] | None = None
    if "--" in args:
        split = args.index("--")
        args, tail = args[:split], args[split + 1 :]
    parser = build_parser()
    options = parser.parse_args(args)
    if tail is not None:
        if hasattr(options, "template_args"):
            options.template_args = [*options.template_args, *tail]
        elif hasattr(options, "cmd"):
            options.cmd = [*options.cmd, *tail]
        else:
            parser.error(f"{options.command} takes no command after --")
    if not getattr(options, "command", None):
        parser.print_help(sys.stderr)
        return 1
    return run(options)


def run(options: Any) -> int:
    from lxcframe.cli import commands
    from lxcframe.errors import LxcframeError

    try:
        return int(commands.dispatch(options) or 0)
    except LxcframeError as err:
        if options.debug:
            raise
        print(f"lxcframe: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        if options.debug:
            raise
        print(f"lxcframe: error: {err}", file=sys.stderr)
        return 1
