"""``lxcframe console``: the caller's terminal in raw mode, wired to a container's tty."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import sys
import termios
import tty

from lxcframe.errors import LxcframeError

from . import client


def parse_escape(text: str) -> int:
    """LXC's ``-e``: ``^a`` is Ctrl-a (the default), any other single character stands for itself."""
    if len(text) == 2 and text[0] == "^" and text[1].isalpha():
        return ord(text[1].upper()) - ord("A") + 1
    if len(text) == 1:
        return ord(text)
    raise LxcframeError(f"-e {text}: expected ^LETTER or a single character")


def _window_size(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return (rows, cols) if rows and cols else None


def _shown(escape: int) -> str:
    return f"Ctrl {chr(escape + ord('a') - 1)}" if escape < 27 else chr(escape)


def run(lxcpath: str, name: str, ttynum: int, escape: int) -> int:
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    holder, fd, number = client.open_tty(lxcpath, name, ttynum, _window_size(stdin))
    key = _shown(escape)
    print(f"\nConnected to tty {number}\nType <{key} q> to exit the console, <{key} {key}> to enter "
          f"{key} itself\n", file=sys.stderr, flush=True)
    saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    try:
        if saved is not None:
            tty.setraw(stdin)
        _pump(stdin, stdout, fd, holder.fileno(), escape)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSAFLUSH, saved)
        os.close(fd)
        holder.close()
    return 0


def _pump(stdin: int, stdout: int, fd: int, holder: int, escape: int) -> None:
    """Copy both ways until ``escape q``, the tty's end, or the monitor's (the container stopped)."""
    saw_escape = False
    while True:
        readable, _, _ = select.select([stdin, fd, holder], [], [])
        if holder in readable:
            return
        if fd in readable:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            os.write(stdout, data)
        if stdin in readable:
            data = os.read(stdin, 1024)
            if not data:
                return
            out = bytearray()
            for byte in data:
                if saw_escape:
                    saw_escape = False
                    if byte == ord("q"):
                        with contextlib.suppress(OSError):
                            os.write(fd, bytes(out))
                        return
                    out.append(byte)  # escape escape sends one escape; escape X sends X
                elif byte == escape:
                    saw_escape = True
                else:
                    out.append(byte)
            if out:
                os.write(fd, bytes(out))
