"""docs/library.md stays true to ``lxcframe.Container``: a section per public method with the code's own
signature, examples whose calls bind to those signatures, the attach options of the code, every name of
``lxcframe.compat.lxc`` (python3-lxc's, name for name) placed, and links that resolve.

Nothing here starts a container: the document is read, the code inspected.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import lxcframe
import lxcframe.compat.lxc as compat
from lxcframe import syscalls
from lxcframe.config.model import ContainerConfig
from lxcframe.container import Container
from lxcframe.plugin_manager import Plugins

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOC = DOCS / "library.md"

#: A method section's heading: ### `name(params) -> result`, two of them joined by " / ".
_SIGNATURE = re.compile(r"`([a-z_0-9]+)\((.*?)\)(?: -> [^`]*)?`")
#: Names the examples give to things that are not containers (their calls are not Container methods).
_NOT_CONTAINERS = {"os", "syscalls", "config", "snap", "err", "now", "out", "lxcframe"}


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text()


def section(text: str, title: str) -> str:
    """The text of the section headed ``title`` up to the next heading of its level or above."""
    match = re.search(rf"^(#+) {re.escape(title)}\s*$", text, re.MULTILINE)
    assert match, f"no section {title!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(text, match.end())
    return text[match.end():end.start() if end else len(text)]


def public_methods() -> dict[str, Any]:
    return {name: getattr(Container, name) for name in dir(Container)
            if not name.startswith("_") and callable(getattr(Container, name))}


def spelled(function: Any) -> str:
    """A signature as the document spells it: no annotations, no self, defaults as Python literals."""
    words: list[str] = []
    for param in list(inspect.signature(function).parameters.values())[1:]:
        if param.kind is param.KEYWORD_ONLY and "*" not in words:
            words.append("*")
        default = "" if param.default is param.empty else "=" + repr(param.default).replace("'", '"')
        words.append(param.name + default)
    return ", ".join(words)


def method_sections(text: str) -> dict[str, str]:
    """Method name -> the parameters its ``###`` heading gives."""
    found: dict[str, str] = {}
    for heading in re.findall(r"^### (.*)$", text, re.MULTILINE):
        for name, params in _SIGNATURE.findall(heading):
            assert name not in found, f"{name} has two sections"
            found[name] = params
    return found


def test_every_public_method_has_a_section(doc_text: str) -> None:
    assert sorted(method_sections(doc_text)) == sorted(public_methods())


def test_sections_give_the_code_signature(doc_text: str) -> None:
    methods = public_methods()
    wrong = {name: (params, spelled(methods[name])) for name, params in method_sections(doc_text).items()
             if name in methods and params != spelled(methods[name])}
    assert wrong == {}, f"section headings differ from the code (documented, actual): {wrong}"


def test_property_table_names_real_attributes(doc_text: str, tmp_path: Path) -> None:
    rows = re.findall(r"^\| `(\w+)` \|", section(doc_text, "Properties and attributes"), re.MULTILINE)
    container = Container("c1", str(tmp_path))  # touches nothing on disk
    properties = {name for name in dir(Container) if isinstance(inspect.getattr_static(Container, name), property)}
    assert "defined" in rows and "init_pid" in rows
    assert [row for row in rows if not hasattr(container, row)] == []
    assert sorted(properties - set(rows)) == [], "a public property of Container is not in the table"


def test_attach_options_are_the_code_keywords(doc_text: str) -> None:
    table = section(doc_text, "Attach options")
    documented: list[str] = []
    for cell in re.findall(r"^\| (.*?) \|", table, re.MULTILINE)[2:]:  # below the header and its rule
        documented += re.findall(r"`(\w+)`", cell)
    keywords = [name for name, param in inspect.signature(Container.attach).parameters.items()
                if param.kind is param.KEYWORD_ONLY]
    assert keywords == list(inspect.signature(Container.attach_wait).parameters)[2:]
    assert sorted(set(documented) - {"run"}) == sorted(keywords)


def calls_in_examples(text: str) -> list[tuple[ast.Call, Any, bool]]:
    """Each call of a Container method, a module function or a class in the examples, with what it
    calls and whether that takes ``self``; an attribute a container does not have is an error."""
    module = {"list_containers": lxcframe.list_containers, "has_api_extension": lxcframe.has_api_extension}
    classes: dict[str, Any] = {"Container": Container, "Plugins": Plugins}
    methods = public_methods()
    found: list[tuple[ast.Call, Any, bool]] = []
    for block in re.findall(r"```python\n(.*?)```", text, re.DOTALL):
        tree = ast.parse(block)  # a syntax error fails the test, naming the line
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                owner, attr = node.value.id, node.attr
                if owner == "syscalls":
                    assert hasattr(syscalls, attr), f"lxcframe.syscalls has no {attr}"
                elif owner == "lxcframe":
                    assert hasattr(lxcframe, attr), f"lxcframe has no {attr}"
                elif owner == "config":
                    assert hasattr(ContainerConfig, attr), f"ContainerConfig has no {attr}"
                elif owner not in _NOT_CONTAINERS and owner.isidentifier() and owner[0].islower() \
                        and owner not in ("print", "names"):
                    assert hasattr(Container, attr) or attr in ("name", "lxcpath", "server"), \
                        f"{ast.unparse(node)}: Container has no {attr}"
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in classes:
                found.append((node, classes[func.id].__init__, True))
            elif isinstance(func, ast.Attribute):
                receiver = func.value
                if isinstance(receiver, ast.Name) and receiver.id == "lxcframe":
                    if func.attr in classes:
                        found.append((node, classes[func.attr].__init__, True))
                    elif func.attr in module:
                        found.append((node, module[func.attr], False))
                elif not (isinstance(receiver, ast.Name) and receiver.id in _NOT_CONTAINERS) \
                        and func.attr in methods:
                    found.append((node, methods[func.attr], True))
    return found


def test_examples_call_methods_as_they_are(doc_text: str) -> None:
    found = calls_in_examples(doc_text)
    assert len(found) > 60, "the examples were not read"
    wrong = []
    for call, function, has_self in found:
        args = [object()] * len(call.args) if not any(isinstance(a, ast.Starred) for a in call.args) else []
        kwargs = {keyword.arg: object() for keyword in call.keywords if keyword.arg}
        try:
            inspect.signature(function).bind(*([object()] if has_self else []), *args, **kwargs)
        except TypeError as err:
            wrong.append(f"{ast.unparse(call)}: {err}")
    assert wrong == []


def test_every_python3_lxc_name_is_placed(doc_text: str, tmp_path: Path) -> None:
    """lxcframe.compat.lxc has python3-lxc's names (module and Container); each is in the mapping."""
    mapping = section(doc_text, "From python3-lxc")
    instance = compat.Container("c1", str(tmp_path))
    names = {*compat.__all__, "default_config_path", *(n for n in dir(instance) if not n.startswith("_"))}
    missing = sorted(name for name in names if not re.search(rf"`{re.escape(name)}\b", mapping))
    assert missing == []


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but '-' and '_' dropped, spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_resolve(doc_text: str) -> None:
    anchors = {_anchor(line.lstrip("#")) for line in doc_text.splitlines() if line.startswith("#")}
    inside = re.findall(r"\]\(#([^)]+)\)", doc_text)
    files = re.findall(r"\]\(([^#)][^)]*)\)", doc_text)
    assert inside and files
    assert sorted(set(inside) - anchors) == []
    assert [name for name in files if not (DOCS / name).is_file()] == []
