"""Builtin templates: ``busybox`` (from the host's static busybox), ``dir`` (an existing tree), ``tar``."""

from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING, TextIO

from lxcframe.elf import is_static_elf
from lxcframe.hooks import hookimpl

if TYPE_CHECKING:
    from lxcframe.templates import Template, TemplateRequest, TemplateResult

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox", "/usr/lib/busybox/busybox")

_COMMON_CONFIG = (
    ("lxc.mount.auto", "proc:mixed sys:ro cgroup:mixed"),
    ("lxc.autodev", "1"),
    ("lxc.pty.max", "1024"),
    ("lxc.cap.drop", "sys_module mac_admin mac_override sys_time"),
)

_INITTAB = """\
::sysinit:/etc/init.d/rcS
::respawn:/bin/sleep 2147483647
::ctrlaltdel:/bin/umount -a -r
::shutdown:/bin/umount -a -r
"""

_RCS = """\
#!/bin/sh
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp 2>/dev/null
echo "$(hostname) up" > /run/booted 2>/dev/null
"""


def find_busybox() -> str | None:
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path) and is_static_elf(path):
            return path
    return None


def build_busybox(request: TemplateRequest) -> TemplateResult:
    import subprocess

    from lxcframe.templates import TemplateResult

    busybox = find_busybox()
    if busybox is None:
        raise RuntimeError("no static busybox on this host (install busybox-static)")
    root = request.rootfs
    for directory in ("bin", "sbin", "dev", "etc/init.d", "home", "proc", "root", "run", "sys", "tmp",
                      "usr/bin", "usr/sbin", "var/log", "mnt", "lib"):
        os.makedirs(os.path.join(root, directory), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    os.chmod(os.path.join(root, "root"), 0o700)
    shutil.copy2(busybox, os.path.join(root, "bin", "busybox"))
    applets = subprocess.run(
        [busybox, "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = os.path.join(root, applet)
        if os.path.lexists(link) or applet == "bin/busybox":
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("/bin/busybox", link)
    _write(root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    _write(root, "etc/group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    _write(root, "etc/hostname", request.name + "\n")
    _write(root, "etc/inittab", _INITTAB)
    _write(root, "etc/init.d/rcS", _RCS, mode=0o755)
    _write(root, "etc/fstab", "")
    config = (
        ("lxc.rootfs.path", f"dir:{root}"),
        ("lxc.uts.name", request.name),
        *_COMMON_CONFIG,
        # busybox init halts on SIGUSR1 and reboots on SIGTERM (LXC's busybox template says the same).
        ("lxc.signal.halt", "SIGUSR1"),
        ("lxc.signal.reboot", "SIGTERM"),
        ("lxc.init.cmd", "/sbin/init"),
    )
    return TemplateResult(rootfs=root, config=config)


def _write(root: str, relative: str, text: str, mode: int = 0o644) -> None:
    path = os.path.join(root, relative)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


def build_dir(request: TemplateRequest) -> TemplateResult:
    from lxcframe.templates import TemplateResult

    if not request.source:
        raise ValueError("the dir template needs --rootfs DIRECTORY")
    source = os.path.abspath(request.source)
    if not os.path.isdir(source):
        raise ValueError(f"--rootfs {source}: not a directory")
    config = (("lxc.rootfs.path", f"dir:{source}"), ("lxc.uts.name", request.name), *_COMMON_CONFIG)
    return TemplateResult(rootfs=source, config=config, owned=False)


class ExtractProgress:
    """How far the unpacking got, by bytes of the archive file: a bar redrawn in place on a terminal,
    otherwise (a log, a pipe) one plain line per tenth."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.shown = ""
        self.tenths = 0

    def __call__(self, done: int, total: int) -> None:
        done = min(done, total)
        mib = f"{done / 2**20:.1f}/{total / 2**20:.1f} MiB"
        if self.tty:
            filled = done * 30 // total
            line = f"\rextracting [{'#' * filled}{'.' * (30 - filled)}] {mib}"
            if line != self.shown:
                self.stream.write(line)
                self.stream.flush()
                self.shown = line
        elif done * 10 // total > self.tenths:
            self.tenths = done * 10 // total
            self.stream.write(f"extracting: {self.tenths * 10}% ({mib})\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.shown = ""


def build_tar(request: TemplateRequest) -> TemplateResult:
    # Imported here: only create needs them, and every command loads this plugin.
    from lxcframe.tar_extract import extract_archive
    from lxcframe.templates import TemplateResult

    if not request.source:
        raise ValueError("the tar template needs --rootfs FILE.tar[.gz|.bz2|.xz|.zst]")
    root = request.rootfs
    os.makedirs(root, exist_ok=True)
    progress = ExtractProgress(sys.stderr)
    try:
        extract_archive(request.source, root, progress)
    finally:
        progress.finish()
    config = (("lxc.rootfs.path", f"dir:{root}"), ("lxc.uts.name", request.name), *_COMMON_CONFIG)
    return TemplateResult(rootfs=root, config=config)


@hookimpl
def lxcframe_templates() -> list[Template]:
    from lxcframe.templates import Template

    return [
        Template("busybox", "a minimal system from the host's static busybox", build_busybox),
        Template("dir", "use an existing directory as the rootfs (--rootfs DIR)", build_dir),
        Template("tar", "unpack a rootfs archive (--rootfs FILE.tar[.gz|.bz2|.xz|.zst])", build_tar),
    ]
