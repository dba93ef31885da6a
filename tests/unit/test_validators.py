"""Shared value syntaxes (lxcframe.validators): signals, rootfs paths, fstab entries, environment entries."""

from __future__ import annotations

import signal

import pytest

from lxcframe.validators import MountEntry, environment_entry, mount_entry, rootfs_path, signal_number

RTMIN = int(signal.SIGRTMIN)
RTMAX = int(signal.SIGRTMAX)


# --- signal_number --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("15", 15),
        (" 9 ", 9),
        ("0", 0),
        ("64", 64),
        ("SIGTERM", int(signal.SIGTERM)),
        ("sigkill", int(signal.SIGKILL)),
        ("SigPwr", int(signal.SIGPWR)),
        ("  SIGHUP\t", int(signal.SIGHUP)),
        ("SIGRTMIN", RTMIN),
        ("sigrtmin", RTMIN),
        ("SIGRTMAX", RTMAX),
        ("SIGRTMIN+0", RTMIN),
        ("SIGRTMIN+3", RTMIN + 3),
        ("SIGRTMAX-1", RTMAX - 1),
        ("SIGRTMAX-0", RTMAX),
        ("SIGRTMIN+30", RTMAX),
        ("SIGRTMAX-30", RTMIN),
    ],
)
def test_signal_number(text: str, number: int) -> None:
    result = signal_number(text)
    assert result == number
    assert type(result) is int  # os.kill and signal.signal take nothing else


@pytest.mark.parametrize("text", ["SIGRTMIN-1", "SIGRTMAX+1", "SIGRTMIN+31", "SIGRTMAX-31", "sigrtmin+100"])
def test_real_time_signal_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match=r"^real-time signal out of range$"):
        signal_number(text)


@pytest.mark.parametrize(
    "text",
    ["", "TERM", "KILL", "SIGFOO", "SIG", "SIGRTMIN+", "SIGRTMIN+x", "SIGRTMID", "-1", "1.5", "SIGTERM2",
     "XSIGTERM", "SIGRTMINX", "SIGRTMIN3", "SIGRTMIN++3", "name", "NAME", "_member_map_", "SIG_DFL"],
)
def test_signal_refused(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        signal_number(text)
    assert str(caught.value) == "expected a signal name such as SIGTERM, SIGRTMIN+n, or a number"
    assert type(caught.value) is ValueError


# --- rootfs_path ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [("/var/lib/c/rootfs", "/var/lib/c/rootfs"), ("dir:/srv/r", "/srv/r"), ("/", "/"), ("dir:/", "/"),
     # An overlay is kept whole (normalised, LXC's older overlayfs: spelling too), for the rootfs stage.
     ("overlay:/a:/b", "overlay:/a:/b"), ("overlayfs:/a/:/b//c", "overlay:/a:/b/c")],
)
def test_rootfs_path(text: str, path: str) -> None:
    assert rootfs_path(text) == path


@pytest.mark.parametrize("text", ["rootfs", "dir:rootfs", "Overlay:/a:/b", "", "dir:", " /x", "DIR:/x"])
def test_rootfs_path_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^expected an absolute path or dir:/path$"):
        rootfs_path(text)


@pytest.mark.parametrize(("text", "reason"), [
    ("overlay:/a", r"^expected overlay:/LOWER:/UPPER \(two absolute paths\)$"),
    ("overlay:a:/b", r"^expected overlay:/LOWER:/UPPER \(two absolute paths\)$"),
    ("overlay:/a:b", r"^expected overlay:/LOWER:/UPPER \(two absolute paths\)$"),
    ("overlay:/a:/b:/c", r"^overlay paths cannot contain ':'$"),
    ("overlay:/a,b:/c", r"^overlay paths cannot contain ','$"),
])
def test_rootfs_path_overlay_refused(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        rootfs_path(text)


# --- mount_entry ---------------------------------------------------------------------------------------


def test_mount_entry_four_fields_defaults_dump_and_pass() -> None:
    assert mount_entry("proc proc proc nodev,noexec,nosuid") == MountEntry(
        "proc", "proc", "proc", ("nodev", "noexec", "nosuid"), 0, 0
    )


def test_mount_entry_all_six_fields() -> None:
    assert mount_entry("/dev/sda1  mnt/data\text4 defaults 1 2") == MountEntry(
        "/dev/sda1", "mnt/data", "ext4", ("defaults",), 1, 2
    )


def test_mount_entry_five_fields() -> None:
    entry = mount_entry("tmpfs tmp tmpfs size=10m,mode=1777 3")
    assert entry == MountEntry("tmpfs", "tmp", "tmpfs", ("size=10m", "mode=1777"), 3, 0)
    assert (entry.dump, entry.passno) == (3, 0)


def test_mount_entry_unescapes_octal() -> None:
    entry = mount_entry(r"/srv/my\040data mnt/my\011dir none bind\054ro 0 0")
    assert entry == MountEntry("/srv/my data", "mnt/my\tdir", "none", ("bind", "ro"), 0, 0)


def test_mount_entry_octal_needs_three_digits() -> None:
    assert mount_entry(r"a\04 b\0401 none bind").source == "a\\04"
    assert mount_entry(r"a\04 b\0401 none bind").target == "b 1"
    assert mount_entry(r"a\089 b none bind").source == "a\\089"


@pytest.mark.parametrize("text", ["", "a b c", "a b c d 0 0 x", "one"])
def test_mount_entry_field_count(text: str) -> None:
    with pytest.raises(ValueError, match=r"^expected 'source target fstype options \[dump \[pass\]\]'$"):
        mount_entry(text)


@pytest.mark.parametrize("text", ["a b c d x", "a b c d 0 y", "a b c d 0.5"])
def test_mount_entry_dump_and_pass_are_numbers(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        mount_entry(text)
    assert str(caught.value) == "dump and pass must be numbers"


# --- environment_entry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["PATH=/bin", "A=", "_x=1=2", "HOME", "a1_B2=x y", "X= spaced "])
def test_environment_entry(text: str) -> None:
    assert environment_entry(text) == text


@pytest.mark.parametrize("text", ["", "=x", "1A=b", "A-B=c", "A B=c", "A.B", "É=1", " A=1", "A\n=1"])
def test_environment_entry_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^expected NAME=value or NAME$"):
        environment_entry(text)
