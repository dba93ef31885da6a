#!/usr/bin/env bash
# Install everything the tests need, then run the whole suite on real containers (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
exec .venv/bin/python -m pytest "$@"
