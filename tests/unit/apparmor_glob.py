"""AppArmor path globs as Python regular expressions, to check what a generated rule matches.

``*`` any characters but ``/``, ``**`` any characters, ``?`` one character but ``/``, ``[…]`` and ``[^…]``
a character class, ``{a,b}`` alternatives (``{,/**}``: nothing, or ``/`` and anything).
"""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=4096)
def glob_regex(glob: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    depth = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.index("]", i + 1)
            body = glob[i + 1:end]
            negate = body.startswith("^")
            chars = re.escape(body.removeprefix("^"))
            out.append(f"[^/{chars}]" if negate else f"[{chars}]")
            i = end + 1
            continue
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(char))
        i += 1
    assert depth == 0, glob
    return re.compile("".join(out))


def matches(glob: str, path: str) -> bool:
    return glob_regex(glob).fullmatch(path) is not None


def matched_by_any(globs: list[str], path: str) -> bool:
    return any(matches(glob, path) for glob in globs)
