"""Entry point of the ``lxcframe`` command. Keeps imports minimal: ``--version`` loads nothing else."""

from __future__ import annotations

import gc
import sys

# Not typing.TYPE_CHECKING: importing typing costs every command a few ms, the thin client's too.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: A tool whose reader went away ends as if killed by SIGPIPE (128 + 13), as shells report it.
EXIT_BROKEN_PIPE = 141


def main(argv: list[str] | None = None, *, here: bool = False) -> int:
    """Run one command; a closed stdout pipe (``lxcframe ls | head -1``) ends it quietly.

    The command runs in a worker of the warm server (:mod:`lxcframe.thin_client`; ``LXCFRAME_SERVER=0``: here)
    unless ``here`` (the worker itself) or it needs this process's terminal.

    The cyclic garbage collector is off while the command imports and registers the plugins (it
    would walk a growing heap of modules and classes, none of them garbage: ~10 ms of every command);
    :func:`lxcframe.cli.commands.collect_from_here` moves what is loaded out of its way and turns it
    back on before the command's own work, which in ``execute`` or ``start -F`` lasts as long as the
    container.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            return _main(argv, here)
        finally:
            # Inside the try: output still buffered would otherwise fail at exit, as "Exception ignored".
            sys.stdout.flush()
            if collecting:
                gc.enable()
    except BrokenPipeError:
        # The Python documentation's recipe: nothing more can reach the reader, and the flush at
        # exit must not fail again, so stdout becomes /dev/null.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None, here: bool) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from lxcframe.version import __version__

        print(f"lxcframe {__version__}")
        return 0
    if args[:1] == ["oci"]:  # the OCI runtime's command line, as lxcframe-oci's (own options, own verbs)
        from lxcframe.oci.entry import run as run_oci

        return run_oci(args[1:], here=here)
    from lxcframe.cli.words import verb_of

    verb = verb_of(args)
    if not here:
        from lxcframe import thin_client

        if thin_client.served(verb, args):
            code = thin_client.run(args)
            if code is not None:
                return code
    from lxcframe.cli.parser import parser_for

    # Everything after the first "--" is the command (or template arguments), verbatim: argparse
    # alone would let an option between NAME and "--" strand the command.
    tail: list[str] | None = None
    if "--" in args:
        split = args.index("--")
        args, tail = args[:split], args[split + 1 :]
    parser = parser_for(verb)
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
    except BrokenPipeError:
        raise  # stdout's reader is gone: main ends quietly, this is no error to report
    except OSError as err:
        if options.debug:
            raise
        print(f"lxcframe: error: {err}", file=sys.stderr)
        return 1
