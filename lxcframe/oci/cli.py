"""``lxcframe-oci``: the OCI runtime command line, called as podman/conmon and containerd's shim call runc.

Global flags come before the subcommand (``--root``, ``--log``, ``--log-format``, ``--systemd-cgroup``
accepted and ignored, ``--debug``, ``--version``). A failure prints one line on stderr and, with
``--log``, appends runc's JSON line ``{"level":"error","msg":…,"time":…}`` there (go-runc reads the
last one into its error); the exit status is 1, as runc's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from lxcframe.oci.layout import DEFAULT_ROOT

#: The status of a command whose reader went away, as a shell reports a death by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lxcframe-oci", description="OCI runtime on lxcframe")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="state directory (default %(default)s)")
    parser.add_argument("--log", help="append error lines to this file")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--systemd-cgroup", action="store_true", help="accepted and ignored")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--version", action="store_true")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    create = commands.add_parser("create", help="create a container from a bundle")
    create.add_argument("--bundle", "-b", default=".")
    create.add_argument("--pid-file")
    create.add_argument("--console-socket")
    create.add_argument("--no-pivot", action="store_true", help="accepted and ignored")
    create.add_argument("--no-new-keyring", action="store_true", help="accepted and ignored")
    create.add_argument("id")

    run = commands.add_parser("run", help="create and start a container; wait for it unless --detach")
    run.add_argument("--bundle", "-b", default=".")
    run.add_argument("--pid-file")
    run.add_argument("--console-socket")
    run.add_argument("--detach", "-d", action="store_true")
    run.add_argument("--keep", action="store_true", help="do not delete the container once it stopped")
    run.add_argument("--no-pivot", action="store_true", help="accepted and ignored")
    run.add_argument("--no-new-keyring", action="store_true", help="accepted and ignored")
    run.add_argument("id")

    for name, text in (("start", "start a created container"), ("pause", "freeze every process"),
                       ("resume", "thaw a paused container")):
        commands.add_parser(name, help=text).add_argument("id")
    state = commands.add_parser("state", help="print the container's state as JSON")
    state.add_argument("id")

    kill = commands.add_parser("kill", help="send a signal to init (or every process with --all)")
    kill.add_argument("--all", "-a", action="store_true")
    kill.add_argument("id")
    kill.add_argument("signal", nargs="?", default="SIGTERM")

    delete = commands.add_parser("delete", help="release a stopped container")
    delete.add_argument("--force", "-f", action="store_true")
    delete.add_argument("id")

    ps = commands.add_parser("ps", help="the container's processes")
    ps.add_argument("--format", "-f", choices=("table", "json"), default="table")
    ps.add_argument("id")

    update = commands.add_parser("update", help="change the container's cgroup limits")
    update.add_argument("--resources", "-r", required=True, help="LinuxResources JSON file ('-': stdin)")
    update.add_argument("id")

    execute = commands.add_parser("exec", help="run a process in a running container")
    execute.add_argument("--process", "-p", required=True, help="runtime-spec Process JSON file")
    execute.add_argument("--detach", "-d", action="store_true")
    execute.add_argument("--pid-file")
    execute.add_argument("--tty", "-t", action="store_true")
    execute.add_argument("--console-socket")
    execute.add_argument("id")

    commands.add_parser("features", help="what this runtime supports, as JSON")
    commands.add_parser("list", help="the containers below --root")
    return parser


class _Errors:
    """Where a failure is told: stderr, and the --log file in its format."""

    def __init__(self, path: str | None, fmt: str) -> None:
        self.path = path
        self.fmt = fmt

    def __call__(self, message: str) -> None:
        print(f"lxcframe-oci: {message}", file=sys.stderr)
        if not self.path:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            line = json.dumps({"level": "error", "msg": message, "time": stamp})
        else:
            line = f'time="{stamp}" level=error msg={json.dumps(message)}'
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as err:
            print(f"lxcframe-oci: --log {self.path}: {err.strerror}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    report = _Errors(options.log, options.log_format)
    if options.version:
        from lxcframe.oci.features import version_text

        print(version_text())
        return 0
    if options.command is None:
        report("no command given (create, run, start, state, kill, delete, exec, pause, resume, ps, update, features)")
        return 1
    try:
        code = _run(options)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # A reader gone (``features | head``): quiet, with the status of a death by SIGPIPE, and stdout
        # /dev/null so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except Exception as err:  # every failure is one line, as runc's
        report(_text(err))
        return 1


def _text(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err) or type(err).__name__


def _setup(options: argparse.Namespace) -> Any:
    from lxcframe.log import HUB
    from lxcframe.oci.layout import RUN_DIR
    from lxcframe.oci.store import Store
    from lxcframe.run_root import RUN_ROOT_ENV

    store = Store(options.root)
    # lxcframe's own runtime state of these containers stays below --root too.
    os.environ[RUN_ROOT_ENV] = os.path.join(store.root, RUN_DIR)
    # The container's stderr is ours: lxcframe's lines go there only when asked for.
    HUB.configure(level="debug" if options.debug else "critical")
    return store


def _plugins() -> Any:
    """The default plugins: a worker of the warm server has them registered already."""
    from lxcframe.hostconfig import load_host_config
    from lxcframe.plugin_manager import for_command

    return for_command((), host=load_host_config(), disable_origin="disable", trace=None)


def _run(options: argparse.Namespace) -> int:
    command = options.command
    if command == "features":
        from lxcframe.oci.features import features

        print(json.dumps(features(), indent=2))
        return 0
    store = _setup(options)
    if command == "create":
        from lxcframe.oci.create import create

        create(store, options.id, options.bundle, options.pid_file, options.console_socket)
        return 0
    if command == "run":
        from lxcframe.oci.run_command import run

        return run(store, options.id, options.bundle, options.pid_file, options.console_socket,
                   detach=options.detach, keep=options.keep, plugins=_plugins)
    from lxcframe.oci import lifecycle

    if command == "exec":
        from lxcframe.oci.exec_process import exec_process

        return exec_process(store, options.id, options.process, detach=options.detach, pid_file=options.pid_file,
                            tty=options.tty, console_socket=options.console_socket, plugins=_plugins())
    elif command == "start":
        lifecycle.start(store, options.id)
    elif command == "state":
        print(json.dumps(lifecycle.state_document(store, options.id, _plugins()), indent=2))
    elif command == "kill":
        signum = lifecycle.parse_signal(options.signal)
        lifecycle.kill(store, options.id, signum, options.all, _plugins())
    elif command == "delete":
        lifecycle.delete(store, options.id, options.force, _plugins())
    elif command in ("pause", "resume"):
        lifecycle.pause(store, options.id, _plugins(), frozen=command == "pause")
    elif command == "ps":
        pids = lifecycle.processes(store, options.id, _plugins())
        if options.format == "json":
            print(json.dumps(pids))
        else:
            print("PID")
            for pid in pids:
                print(pid)
    elif command == "update":
        path = "/dev/stdin" if options.resources == "-" else options.resources
        lifecycle.update(store, options.id, path, _plugins())
    elif command == "list":
        plugins = _plugins()
        for container_id in store.ids():
            document = lifecycle.state_document(store, container_id, plugins)
            print(f"{container_id}\t{document['pid']}\t{document['status']}\t{document['bundle']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
