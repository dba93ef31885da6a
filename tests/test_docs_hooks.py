"""docs/plugins.md documents every hookspec, and nothing else, with the hookspec's own arguments.

In the manner of datasette's ``test_plugin_hooks_are_documented``: the hookspecs are read from
``lxcframe/hooks/``, the sections from the document's ``### lxcframe_NAME(ARGS)`` headings.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from lxcframe.hooks import PROJECT_NAME, SPEC_MODULES
from lxcframe.stages import START_STAGES

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"

_HEADING = re.compile(r"^### (lxcframe_\w+)\((.*)\)\s*$", re.MULTILINE)


def hookspecs() -> dict[str, list[str]]:
    """Every hookspec of lxcframe/hooks/: name -> argument names."""
    specs: dict[str, list[str]] = {}
    for module_name in SPEC_MODULES:
        module = importlib.import_module(module_name)
        for name, function in vars(module).items():
            if callable(function) and hasattr(function, f"{PROJECT_NAME}_spec"):
                specs[name] = list(inspect.signature(function).parameters)
    return specs


def documented(text: str) -> dict[str, list[str]]:
    """Hook sections of the document: name -> argument names of its heading."""
    sections: dict[str, list[str]] = {}
    for match in _HEADING.finditer(text):
        name, args = match.group(1), match.group(2)
        assert name not in sections, f"{name} has two sections"
        sections[name] = [arg.strip() for arg in args.split(",") if arg.strip()]
    return sections


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_spec_modules_hold_hooks() -> None:
    specs = hookspecs()
    # A broken discovery (no spec found) would make the comparisons below pass vacuously.
    assert {"lxcframe_config_keys", "lxcframe_validate", "lxcframe_child_pre_pivot"} <= set(specs)
    assert specs["lxcframe_setup_network"] == ["ctx", "pid"]


def test_every_hook_is_documented(doc_text: str) -> None:
    missing = sorted(set(hookspecs()) - set(documented(doc_text)))
    assert missing == [], f"hookspecs without a '### NAME(ARGS)' section in docs/plugins.md: {missing}"


def test_no_section_for_a_hook_that_does_not_exist(doc_text: str) -> None:
    unknown = sorted(set(documented(doc_text)) - set(hookspecs()))
    assert unknown == [], f"docs/plugins.md documents hooks that are no hookspec: {unknown}"


def test_sections_name_the_hook_arguments(doc_text: str) -> None:
    specs = hookspecs()
    wrong = {name: (args, specs[name]) for name, args in documented(doc_text).items()
             if name in specs and args != specs[name]}
    assert wrong == {}, f"section heading arguments differ from the hookspec (documented, actual): {wrong}"


def test_stage_table_follows_stages(doc_text: str) -> None:
    """The table of start stages is lxcframe/stages.py's order, hook and side."""
    rows = re.findall(r"^\| ([a-z-]+) \| `(lxcframe_\w+)`[^|]* \| (host|child)\b", doc_text, re.MULTILINE)
    assert rows == [(stage.name, stage.hook, stage.side) for stage in START_STAGES]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but '-' and '_' dropped, spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_inside_the_document_resolve(doc_text: str) -> None:
    anchors = {_anchor(line.lstrip("#")) for line in doc_text.splitlines() if line.startswith("#")}
    links = re.findall(r"\]\(#([^)]+)\)", doc_text)
    assert links, "the document links its own sections"
    assert sorted(set(links) - anchors) == []
