"""AppArmor globs for "everything below a directory except these branches".

AppArmor has no rule that subtracts one path from another, and a ``deny`` cannot be undone by an
``allow``. To say "deny writes in /proc/sys, except kernel/hostname and net/" the profile must
instead name every *other* path, which globs can do one character at a time: ``/proc/sys/[^kn]*``
covers names that start with neither branch, ``/proc/sys/k[^e]*`` names that start with ``k`` but
leave ``kernel`` at the second character, and so on; ``/proc/sys/kernel?*`` covers names that
merely start with ``kernel``.

Branches are written as relative paths. A component ending in ``*`` is a name prefix (``shm*``:
``shmmax``, ``shmall``…, but nothing below them); one ending in ``**`` keeps the whole subtree of
the names it matches (``net/**``, or ``k**``: every name starting with ``k`` and all below it); any other
kept name keeps all below it too. Branches must not overlap: no sibling may start with the part of a name
before its ``*``, and no branch may go on below another one.
"""

from __future__ import annotations

from collections.abc import Iterable

#: A tree of kept names: component -> the kept names below it (empty: a leaf).
Tree = dict[str, "Tree"]


def build_tree(branches: Iterable[str]) -> Tree:
    tree: Tree = {}
    for branch in branches:
        node = tree
        for part in branch.strip("/").split("/"):
            node = node.setdefault(part, {})
    return tree


def _differ_at(names: Iterable[str], prefix: str) -> str:
    """The characters that follow ``prefix`` in any of ``names``, sorted."""
    index = len(prefix)
    return "".join(sorted({n[index] for n in names if len(n) > index and n.startswith(prefix)}))


def _is_wildcard_tail(name: str, index: int) -> bool:
    # From here on the kept name is a wildcard: nothing after it can be excluded character-wise.
    return name[index:] in ("*", "**")


def _globs(base: str, tree: Tree) -> set[str]:
    found: set[str] = set()
    for name, below in tree.items():
        for index in range(len(name)):
            if _is_wildcard_tail(name, index):
                break
            prefix = name[:index]
            rest = f"[^{_differ_at(tree, prefix)}]*"
            if prefix and prefix not in tree:
                rest = f"{{,{rest}}}"  # the prefix alone is another name (/sys/dev next to /sys/devices)
            found.add(f"{base}/{prefix}{rest}{{,/**}}")
        if name.endswith("**"):
            continue
        if name.endswith("*"):
            # A kept name prefix: the entries themselves stay, what is below them does not.
            found.add(f"{base}/{name}/**")
        elif not _differ_at(tree, name):
            # Longer names; a kept sibling that extends this one leaves them to its own globs.
            found.add(f"{base}/{name}?*{{,/**}}")
        if below:
            found |= _globs(f"{base}/{name}", below)
    return found


def complement_globs(base: str, branches: Iterable[str], within: str = "") -> list[str]:
    """Globs matching every path below ``base`` that is not on one of ``branches``, sorted.

    ``base`` itself and the directories leading to a kept branch are not matched either. With
    ``within``, only the globs for names starting with it are returned (another rule set is
    assumed to cover the rest).
    """
    base = base.rstrip("/")
    globs = (g for g in _globs(base, build_tree(branches)) if g.startswith(f"{base}/{within}"))
    # Sorted as if "{," were not there: prefix{,[^c]*} sorts where prefix[^c]* would.
    return sorted(globs, key=lambda glob: glob.replace("{,", "", 1))
