"""Entry point of ``lxcframe-oci`` (and of ``lxcframe oci``): which process runs the command.

A cold interpreter pays ~0.1-0.2 s of imports and plugin registration before a command does anything,
and an orchestrator calls the runtime several times per container (podman: ``create``, ``start``,
``state``, ``delete``). The commands that only act on a created container (:data:`SERVED`) go to the
warm server of the ``--root`` (its run directory is ``<root>/.run``), as the ``lxcframe`` command
line's do (:mod:`lxcframe.thin_client`): a worker forked from the server runs them with the caller's
stdio, working directory, environment and umask, and the caller ends with its exit status.

``create``, ``run`` and ``exec`` stay in the caller's process: the container's init, and an executed
process, must be this process's children, so that they are reparented to the caller's subreaper
(conmon, the containerd shim), which reaps them. ``create`` (and ``run``) starts the server, without
waiting for it, so that the commands after it find it warm. ``LXCFRAME_SERVER=0`` runs every command in its own process.

This module imports only the standard library's ``gc``, ``os`` and ``sys`` (and the names of
``--root``'s layout) until it knows where the command runs.
"""

from __future__ import annotations

import gc
import os
import sys

from lxcframe.oci.layout import DEFAULT_ROOT, RUN_DIR

#: Commands a worker of the server runs.
SERVED = frozenset(("start", "state", "kill", "delete", "pause", "resume", "ps", "update", "list"))
#: Global options that take a value as the next word.
_VALUED = frozenset(("--root", "--log", "--log-format"))


def main() -> int:
    return run(sys.argv[1:])


def run(argv: list[str], *, here: bool = False) -> int:
    """Run the OCI command ``argv``; in a worker of the server unless ``here`` or it must run here."""
    command, root = command_and_root(argv)
    # lxcframe's own state of these containers, and their server, stay below --root.
    os.environ["LXCFRAME_RUNDIR"] = os.path.join(os.path.abspath(root), RUN_DIR)
    if not here and os.environ.get("LXCFRAME_SERVER", "") != "0":
        # A root that holds no container has nothing to serve: no server is started for it.
        if command in SERVED and _holds_containers(root):
            from lxcframe import thin_client

            code = thin_client.run(["oci", *argv])
            if code is not None:
                return code
        elif command in ("create", "run") and os.geteuid() == 0:
            _start_server()
    # As the lxcframe command's: no cyclic collection while the command imports and registers the
    # plugins (none of it is garbage); a create is over before it would matter, and a run that waits
    # for its container turns it on again (lxcframe.oci.run_command).
    gc.disable()
    from lxcframe.oci.cli import main as oci_main

    return oci_main(argv)


def command_and_root(argv: list[str]) -> tuple[str | None, str]:
    """The command word and the ``--root`` of ``argv`` (runc's global options come before the command)."""
    root = DEFAULT_ROOT
    words = iter(argv)
    for word in words:
        name, equals, value = word.partition("=")
        if name in _VALUED:
            if not equals:
                value = next(words, "")
            if name == "--root" and value:
                root = value
        elif not word.startswith("-"):
            return word, root
    return None, root


def _holds_containers(root: str) -> bool:
    try:
        return any(name != RUN_DIR for name in os.listdir(root))
    except OSError:
        return False


def _start_server() -> None:
    """Start the server of this run directory for the commands after ``create``, unless one listens."""
    from lxcframe.run_root import connect

    conn = connect()
    if conn is not None:
        conn.close()
        return
    os.makedirs(os.environ["LXCFRAME_RUNDIR"], mode=0o711, exist_ok=True)
    from lxcframe.spawning import start_server

    start_server(wait=False)


if __name__ == "__main__":
    raise SystemExit(main())
