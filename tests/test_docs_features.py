"""docs/features.md names, for every row of its tables, tests that exist under tests/.

The rule the document follows, and this test reads it by:

- A table is a run of lines starting with ``|``: a header row, a separator row, then its rows. Its
  section is the ``## `` heading above it. Tables in a section that lists the LXC keys lxcframe does
  not handle (``UNSUPPORTED_SECTIONS``) hold no tests; every other table has a column whose header
  starts with ``test`` and every row names at least one test in that column.
- A test is named as ``tests/FILE.py::test_NAME`` (``tests/`` may be left out, ``::Class::test_NAME``
  names a method, a ``[param]`` suffix is ignored), anywhere in the document; or, inside a test
  cell, as a bare ``test_NAME`` in backticks. A bare name belongs to the last ``tests/FILE.py``
  named (without ``::``) before it in its cell, else to the file the column header names, else to any
  file under tests/.
- A test exists when its file defines it: a module-level ``def test_NAME`` (or ``async def``), or a
  method of a class, read from the file's AST.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import attrs

TESTS_DIR = Path(__file__).resolve().parent
DOC = TESTS_DIR.parent / "docs" / "features.md"

#: Sections whose tables list keys lxcframe does not handle: nothing there is held by a test.
UNSUPPORTED_SECTIONS = ("## LXC keys lxcframe does not handle yet",)

#: A qualified reference: tests/FILE.py::test_NAME or tests/FILE.py::Class::test_NAME.
_QUALIFIED = re.compile(r"((?:tests/)?[\w/]+\.py)::((?:[A-Za-z_]\w*::)?test_\w+)(?:\[[^\]`]*\])?")
#: A file named on its own in a test cell (no ``::`` after it): the file of the bare names after it.
_FILE = re.compile(r"((?:tests/)?[\w/]+\.py)(?!::)\b")
#: A bare test name in backticks, with an optional [param] suffix.
_BARE = re.compile(r"`(test_\w+)(?:\[[^\]`]*\])?`")
#: A cell boundary: a ``|`` not escaped as ``\\|``.
_CELL = re.compile(r"(?<!\\)\|")


@attrs.frozen
class Row:
    line: int
    cells: tuple[str, ...]


@attrs.frozen
class Table:
    section: str
    line: int
    header: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def test_column(self) -> int | None:
        return next((i for i, cell in enumerate(self.header) if cell.lower().startswith("test")), None)


@attrs.frozen
class Ref:
    """A test the document names at ``line``: ``file`` is relative to tests/, None for any file."""

    line: int
    file: str | None
    name: str


def _cells(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in _CELL.split(line.strip().strip("|")))


def tables(text: str) -> list[Table]:
    found: list[Table] = []
    section = ""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line.strip()
        if not line.startswith("|"):
            index += 1
            continue
        start = index
        while index < len(lines) and lines[index].startswith("|"):
            index += 1
        block = lines[start:index]
        assert len(block) >= 2 and set(block[1].replace("|", "").strip()) <= set("-: "), (
            f"{DOC.name}:{start + 1}: a table needs a header and a separator row")
        rows = tuple(Row(start + 3 + offset, _cells(row)) for offset, row in enumerate(block[2:]))
        found.append(Table(section, start + 1, _cells(block[0]), rows))
    return found


def _test_file(name: str) -> str:
    return name.removeprefix("tests/")


def references(text: str) -> list[Ref]:
    """Every test the document names: qualified ones anywhere, bare ones in the test cells."""
    refs = [Ref(number, _test_file(match.group(1)), match.group(2))
            for number, line in enumerate(text.splitlines(), 1) for match in _QUALIFIED.finditer(line)]
    for table in tables(text):
        column = table.test_column
        if column is None:
            continue
        header_files = _FILE.findall(table.header[column])
        default = _test_file(header_files[-1]) if header_files else None
        for row in table.rows:
            refs.extend(Ref(row.line, file, name) for file, name in _bare_names(row.cells[column], default))
    return refs


def _bare_names(cell: str, default: str | None) -> list[tuple[str | None, str]]:
    """The bare names of a test cell with the file each belongs to."""
    events = [(m.start(), "file", _test_file(m.group(1))) for m in _FILE.finditer(cell)]
    events += [(m.start(), "name", m.group(1)) for m in _BARE.finditer(cell)]
    current, found = default, []
    for _, kind, value in sorted(events):
        if kind == "file":
            current = value
        else:
            found.append((current, value))
    return found


def defined_tests(root: Path = TESTS_DIR) -> dict[str, set[str]]:
    """Test file (relative to ``root``) -> the tests it defines, ``Class::test_NAME`` for methods."""
    defined: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        names: set[str] = set()
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.ClassDef):
                names.update(f"{node.name}::{item.name}" for item in node.body
                             if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef))
        defined[str(path.relative_to(root))] = {name for name in names if name.split("::")[-1].startswith("test_")}
    return defined


def missing(refs: list[Ref], defined: dict[str, set[str]]) -> list[str]:
    """The references no test file answers, as ``features.md:LINE: ...``."""
    errors = []
    for ref in refs:
        if ref.file is None:
            if not any(ref.name in names for names in defined.values()):
                errors.append(f"{DOC.name}:{ref.line}: no file under tests/ defines {ref.name}")
        elif ref.file not in defined:
            errors.append(f"{DOC.name}:{ref.line}: tests/{ref.file} does not exist")
        elif ref.name not in defined[ref.file]:
            errors.append(f"{DOC.name}:{ref.line}: tests/{ref.file} does not define {ref.name}")
    return errors


def rows_without_tests(text: str) -> list[str]:
    """Tables without a test column and rows naming no test, outside the sections of unsupported keys."""
    errors = []
    refs = references(text)
    for table in tables(text):
        if table.section in UNSUPPORTED_SECTIONS:
            continue
        column = table.test_column
        if column is None:
            errors.append(f"{DOC.name}:{table.line}: a table without a 'test' column")
            continue
        for row in table.rows:
            if len(row.cells) != len(table.header):
                errors.append(f"{DOC.name}:{row.line}: {len(row.cells)} cells under {len(table.header)} headers")
            elif not any(ref.line == row.line for ref in refs):
                errors.append(f"{DOC.name}:{row.line}: the row names no test")
    return errors


def test_the_document_is_read_into_tables_and_references() -> None:
    # A parse that found nothing would let the checks below pass vacuously.
    text = DOC.read_text()
    found = tables(text)
    assert [table.header[0] for table in found][:3] == ["plugin", "key", "command"]
    assert sum(len(table.rows) for table in found) >= 25
    refs = references(text)
    assert len(refs) >= 60
    assert Ref(found[2].rows[0].line, "test_cli_operator.py", "test_wait_takes_states_joined_by_a_bar") in refs
    assert {"test_lifecycle.py", "unit/test_idmap.py"} <= set(defined_tests())


def test_every_referenced_test_exists() -> None:
    errors = missing(references(DOC.read_text()), defined_tests())
    assert not errors, "tests docs/features.md names that are not defined:\n" + "\n".join(errors)


def test_every_table_row_names_a_test() -> None:
    errors = rows_without_tests(DOC.read_text())
    assert not errors, "\n".join(errors)


SAMPLE = """\
## Keys

| key | what | test (`tests/test_b.py` unless named) |
|---|---|---|
| `k1` | a \\| b | `tests/test_a.py::test_one`, `test_two` |
| `k2` | c | `tests/test_a.py`: `test_one`; `tests/sub/test_c.py`: `test_three[x]` |
| `k3` | d | `tests/test_a.py` |
| `k4` | e | `test_gone` |

See `test_a.py::test_renamed` too.

## LXC keys lxcframe does not handle yet

| key |
|---|
| `lxc.selinux.context` |
"""


def test_the_rule_resolves_bare_names_and_reports_renamed_tests_and_rows_without_one(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "test_a.py").write_text("def test_one(): pass\nclass TestK:\n    def test_m(self): pass\n")
    (tmp_path / "test_b.py").write_text("async def test_two(): pass\ndef helper(): pass\n")
    (tmp_path / "sub" / "test_c.py").write_text("def test_three(x): pass\n")
    refs = references(SAMPLE)
    assert refs == [Ref(5, "test_a.py", "test_one"), Ref(10, "test_a.py", "test_renamed"),
                    Ref(5, "test_b.py", "test_two"), Ref(6, "test_a.py", "test_one"),
                    Ref(6, "sub/test_c.py", "test_three"), Ref(8, "test_b.py", "test_gone")]
    assert defined_tests(tmp_path) == {"test_a.py": {"test_one", "TestK::test_m"}, "test_b.py": {"test_two"},
                                       "sub/test_c.py": {"test_three"}}
    assert missing(refs, defined_tests(tmp_path)) == [
        "features.md:10: tests/test_a.py does not define test_renamed",
        "features.md:8: tests/test_b.py does not define test_gone",
    ]
    # A row naming only a file holds no test; the table of unsupported keys needs none.
    assert rows_without_tests(SAMPLE) == ["features.md:7: the row names no test"]
    assert rows_without_tests("| a | b |\n|---|---|\n| 1 | 2 |\n") == ["features.md:1: a table without a 'test' column"]
    assert missing([Ref(1, None, "test_nowhere"), Ref(2, "test_x.py", "test_one")], defined_tests(tmp_path)) == [
        "features.md:1: no file under tests/ defines test_nowhere", "features.md:2: tests/test_x.py does not exist"]
