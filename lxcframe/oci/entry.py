"""Entry point of ``lxcframe-oci`` (and of ``lxcframe oci``): which process runs the command.

A cold interpreter pays ~0.1-0.2 s of imports and plugin registration before a command does anything,
and an orchestrator calls the runtime several times per container (podman: ``create``, ``start``,
``delete``). When the warm server of the ``--root`` runs (its run directory is ``<root>/.run``;
started by the operator, e.g. ``LXCFRAME_RUNDIR=/run/lxcframe-oci/.run python -m lxcframe.supervisor``
or socket activation), the commands that only act on a created container (:data:`SERVED`) go to it
as the ``lxcframe`` command line's do (:mod:`lxcframe.thin_client`): a worker forked from the server
runs them with the caller's stdio, working directory, environment and umask, and the caller ends
with its exit status.

No command starts a server: one started by ``create`` or a later command would live in the
orchestrator's per-container cgroup (conmon's), where it keeps the cgroup busy after the container
is gone, and nothing of a runtime may outlive what its caller waits for. ``create``, ``run`` and
``exec`` always stay in the caller's process: the container's init, and an executed process, must be
this process's children, so that they are reparented to the caller's subreaper (conmon, the
containerd shim), which reaps them. ``LXCFRAME_SERVER=0`` runs every command in its own process.

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
    if not here and command in SERVED and os.environ.get("LXCFRAME_SERVER", "") != "0":
        from lxcframe import thin_client

        code = thin_client.run(["oci", *argv], start_server=False)
        if code is not None:
            return code
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


if __name__ == "__main__":
    raise SystemExit(main())
