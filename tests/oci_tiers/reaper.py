"""A child subreaper for OCI runtime commands, as conmon and containerd's shim are.

    python -m tests.oci_tiers.reaper REPORT -- RUNTIME [ARGS...]

Runs the command with this process's stdio, as a subreaper: a container init (or an exec'd
process) that the command leaves behind reparents here instead of to the host's init. Every child
reaped is written to REPORT as one JSON line, ``{"pid": N, "status": S, "signal": G}`` (the
command's own too, first), flushed at once; exits when no child is left. The report file is not
inherited by the container: its process must see only the stdio it was given.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from lxcframe.syscalls import PR_SET_CHILD_SUBREAPER, prctl


def _entry(pid: int, wait_status: int) -> dict[str, int | None]:
    if os.WIFSIGNALED(wait_status):
        return {"pid": pid, "status": None, "signal": os.WTERMSIG(wait_status)}
    return {"pid": pid, "status": os.waitstatus_to_exitcode(wait_status), "signal": None}


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: reaper REPORT -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    report_path, command = argv[0], argv[2:]
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    # A stop of the test (SIGTERM) ends this process only: the runtime's delete ends the containers.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with open(report_path, "w", encoding="utf-8") as report:  # close-on-exec, as every Python file
        command_pid = os.fork()
        if command_pid == 0:
            try:
                os.execvp(command[0], command)
            finally:
                os._exit(127)
        while True:
            try:
                pid, wait_status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 0
            entry = _entry(pid, wait_status)
            entry["command"] = int(pid == command_pid)
            report.write(json.dumps(entry) + "\n")
            report.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
