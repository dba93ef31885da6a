"""The coverage of the last test run: a line per package, then the totals, branch coverage first."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "coverage.json"
        subprocess.run([sys.executable, "-m", "coverage", "json", "-q", "-o", str(out)], check=True)
        report = json.loads(out.read_text())
    packages: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for path, data in report["files"].items():
        package = str(Path(path).parent)
        summary = data["summary"]
        for i, key in enumerate(("covered_lines", "num_statements", "covered_branches", "num_branches")):
            packages[package][i] += summary[key]
    print(f"\n{'coverage by package':<28} {'lines':>18} {'branches':>18}")
    for package, (lines, statements, branches, all_branches) in sorted(packages.items()):
        print(f"{package:<28} {_share(lines, statements):>18} {_share(branches, all_branches):>18}")
    totals = report["totals"]
    print(f"branch coverage: {_share(totals['covered_branches'], totals['num_branches'])}; "
          f"lines: {_share(totals['covered_lines'], totals['num_statements'])}; "
          f"combined: {totals['percent_covered']:.1f}%")
    return 0


def _share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}% {f'{part}/{whole}':>11}" if whole else "-"


if __name__ == "__main__":
    sys.exit(main())
