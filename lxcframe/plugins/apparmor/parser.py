"""Running ``apparmor_parser``: version, load, unload, and a compile-only check.

Load and unload use the binary policy cache (``-W`` write it, ``-L`` where): a container started
again with an unchanged profile file is loaded from the cache instead of being compiled, which is
why the profile file is rewritten only when its text changed (the cache is keyed on its mtime).

The compile-only check (``-Q`` skip the kernel, ``-K`` skip the cache) needs no AppArmor in the
kernel at all, so configs can be checked on any host that has the parser installed.
"""

from __future__ import annotations

import subprocess

import attrs

#: Compiling a large profile takes well under a second; a parser hung for this long is broken.
_TIMEOUT = 120
#: Printed by -Q/-K runs on hosts without AppArmor in the kernel; says nothing about the profile.
_NOISE = ("Cache read/write disabled",)


class ParserError(Exception):
    """The parser could not be run, or failed; the message carries its output."""


def _clean(output: str) -> str:
    lines = [line.strip() for line in output.splitlines()]
    return "; ".join(line for line in lines if line and not line.startswith(_NOISE))


def _run(argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=_TIMEOUT, check=False, stdin=None if stdin is not None else subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ParserError(f"cannot run {argv[0]}: {err}") from None


def run_version(parser: str) -> str:
    """The output of ``parser --version``."""
    result = _run([parser, "--version"])
    if result.returncode != 0:
        raise ParserError(f"exit status {result.returncode}: {_clean(result.stdout)}")
    return result.stdout


@attrs.frozen
class CompileResult:
    ok: bool
    #: The parser's messages, one line each joined with "; " (empty when it had nothing to say).
    message: str


def check_profile(parser: str, text: str) -> CompileResult:
    """Compile ``text`` without touching the kernel or the cache."""
    result = _run([parser, "-QK"], stdin=text)
    return CompileResult(result.returncode == 0, _clean(result.stdout))


@attrs.frozen
class Parser:
    """One parser binary with one cache directory."""

    path: str
    cache_dir: str

    def load_argv(self, profile_file: str) -> list[str]:
        # r: replace (or add) the profile; W: write the cache; L: the cache's location.
        return [self.path, "-rWL", self.cache_dir, profile_file]

    def unload_argv(self, profile_file: str) -> list[str]:
        return [self.path, "-RWL", self.cache_dir, profile_file]

    def load(self, profile_file: str) -> None:
        self._must(self.load_argv(profile_file))

    def unload(self, profile_file: str) -> None:
        self._must(self.unload_argv(profile_file))

    def _must(self, argv: list[str]) -> None:
        result = _run(argv)
        if result.returncode != 0:
            output = _clean(result.stdout) or "no output"
            raise ParserError(f"{' '.join(argv)}: exit status {result.returncode}: {output}")
