#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite on real containers (as root), under
# coverage: the report at the end counts branches of every lxcframe process the tests started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
export COVERAGE_FILE="$PWD/.coverage"
rm -f .coverage .coverage.*
status=0
.venv/bin/python -m coverage run -m pytest "$@" || status=$?
.venv/bin/python -m coverage combine -q
.venv/bin/python scripts/coverage_summary.py
exit "$status"
