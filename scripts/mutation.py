"""Mutation testing of the logic that runs without root, with mutmut, and a score per module.

    python scripts/mutation.py                        # every module listed in [tool.mutmut] only_mutate
    python scripts/mutation.py lxcframe/idmap.py      # one module (about a minute)
    python scripts/mutation.py --fail-under 90 ...    # exit 1 when a module scores lower

mutmut copies the tree into ./mutants, records which tests of tests/unit call which function, then runs
only those tests against each mutant. The score of a module is killed / (every mutant that was run): a
mutant no test calls counts against it, like one that survives. ./mutants is rebuilt on every run unless
--keep is given (mutmut then retests only what changed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KILLED = {1, 3, 37}  # a failing test, pytest's internal error, caught by the type check (mutmut's codes)
TIMEOUT = {36, 24, -24}


def listed_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def mutant_glob(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".") + ".*"


def verdicts(module: str) -> Counter[str]:
    meta = ROOT / "mutants" / (module + ".meta")
    counts: Counter[str] = Counter()
    if not meta.exists():
        return counts
    for code in json.loads(meta.read_text())["exit_code_by_key"].values():
        if code in KILLED:
            counts["killed"] += 1
        elif code in TIMEOUT:
            counts["timeout"] += 1  # mutmut counts a hang as caught; so do we, but shows it
        elif code == 0:
            counts["survived"] += 1
        elif code in (5, 33):
            counts["no tests"] += 1
        elif code is None:
            counts["not run"] += 1
        else:
            counts["suspicious"] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="paths of modules from [tool.mutmut] only_mutate")
    parser.add_argument("--fail-under", type=float, default=0.0, metavar="PERCENT")
    parser.add_argument("--keep", action="store_true", help="reuse ./mutants from the last run")
    parser.add_argument("--max-children", type=int, default=None)
    args = parser.parse_args()

    known = listed_modules()
    modules = args.modules or known
    unknown = [m for m in modules if m not in known]
    if unknown:
        parser.error(f"not in [tool.mutmut] only_mutate of pyproject.toml: {', '.join(unknown)}")
    if not args.keep:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    command = [sys.executable, "-m", "mutmut", "run"]
    if args.max_children:
        command += ["--max-children", str(args.max_children)]
    if args.modules:
        command += [mutant_glob(m) for m in modules]
    # mutmut draws a spinner; its own summary is the table printed below. On a failure (its clean
    # run of the tests failed, say) it explains on stdout: show the end of it without the spinner.
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        lines = [line for line in run.stdout.replace("\r", "\n").splitlines() if line.strip()]
        sys.stderr.write("\n".join(lines[-40:]) + "\n" + run.stderr)
        print(f"mutmut exited with status {run.returncode}", file=sys.stderr)
        return run.returncode

    width = max(len(m) for m in modules)
    print(f"{'module':<{width}}  killed  timeout  survived  no tests  other  score")
    failed = []
    totals: Counter[str] = Counter()
    for module in modules:
        counts = verdicts(module)
        totals.update(counts)
        print(_row(module, width, counts))
        if _score(counts) < args.fail_under:
            failed.append(module)
    if len(modules) > 1:
        print(_row("all", width, totals))
    print("survivors: python -m mutmut results; one in full: python -m mutmut show NAME (in the repository root)")
    if failed:
        print(f"below {args.fail_under:g}%: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _score(counts: Counter[str]) -> float:
    caught = counts["killed"] + counts["timeout"]
    total = sum(v for k, v in counts.items() if k != "not run")
    return 100.0 * caught / total if total else 100.0


def _row(name: str, width: int, counts: Counter[str]) -> str:
    other = counts["suspicious"] + counts["not run"]
    return (f"{name:<{width}}  {counts['killed']:>6}  {counts['timeout']:>7}  {counts['survived']:>8}  "
            f"{counts['no tests']:>8}  {other:>5}  {_score(counts):5.1f}%")


if __name__ == "__main__":
    sys.exit(main())
