#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite on real containers (as root), under
# coverage: the report at the end counts branches of every lxcframe process the tests started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
export COVERAGE_FILE="$PWD/.coverage"
rm -f .coverage .coverage.*
# Coverage starts in every Python process of ours, the test runner included, through the .pth file
# coverage installs; ours saves what a container's child measured before it enters the container.
export COVERAGE_PROCESS_START="$PWD/pyproject.toml"
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import os; os.environ.get('COVERAGE_PROCESS_START') and exec(open('$PWD/scripts/coverage_at_pivot.py').read(), {})" \
    > "$site/lxcframe_coverage_at_pivot.pth"
status=0
.venv/bin/python -m pytest "$@" || status=$?
.venv/bin/python -m coverage combine -q
.venv/bin/python scripts/coverage_summary.py
exit "$status"
