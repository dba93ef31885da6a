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
# Whether the arguments name test files or directories: then only those run, not contrib's tests.
names_paths() {
    local arg
    for arg in "$@"; do
        case $arg in -*) continue ;; esac
        if [ -e "${arg%%::*}" ]; then return 0; fi
    done
    return 1
}

# Whether the arguments select tests themselves (-k, -m, --lf, names): then one pytest runs them.
selects_tests() {
    local arg
    for arg in "$@"; do
        case $arg in -k|-k*|-m|-m*|--lf|--last-failed|--ff|--failed-first|--sw|--stepwise|--shard*) return 0 ;; esac
    done
    names_paths "$@"
}

# The whole suite runs as one shard per core (LXCFRAME_TEST_SHARDS, at most 4), side by side, each in
# network and mount namespaces and a cgroup of its own (tests/shards.py); then the tests marked
# serial, alone. Shard 0 writes here as it goes, the others when they are done.
status=0
shards=${LXCFRAME_TEST_SHARDS:-$(nproc)}
if [ "$shards" -gt 4 ]; then shards=4; fi
if [ "$shards" -le 1 ] || selects_tests "$@"; then
    .venv/bin/python -m pytest "$@" || status=$?
else
    logs=$(mktemp -d)
    pids=()
    for ((i = 1; i < shards; i++)); do
        .venv/bin/python -m pytest "$@" --shard "$i/$shards" > "$logs/shard-$i.log" 2>&1 &
        pids+=("$!")
    done
    echo "== shard 0/$shards (shards 1 to $((shards - 1)) follow when done)"
    .venv/bin/python -m pytest "$@" --shard "0/$shards" || status=$?
    for ((i = 1; i < shards; i++)); do
        shard_status=0
        wait "${pids[$((i - 1))]}" || shard_status=$?
        echo "== shard $i/$shards"
        cat "$logs/shard-$i.log"
        if [ "$shard_status" -ne 0 ]; then status=$shard_status; fi
    done
    rm -rf "$logs"
    echo "== serial tests"
    serial_status=0
    .venv/bin/python -m pytest "$@" -m serial || serial_status=$?
    if [ "$serial_status" -ne 0 ] && [ "$serial_status" -ne 5 ]; then status=$serial_status; fi
fi

# contrib/lxcframe-motd's own tests, run as its author runs them: the distribution installed, pytest
# started in its directory (its pyproject's settings), lxcframe's fixtures reaching it through the
# pytest11 entry point. Installed only for the run if it was not installed before.
contrib=contrib/lxcframe-motd
if ! names_paths "$@"; then
    if ! .venv/bin/python -m pip show -q lxcframe-motd 2>/dev/null; then
        trap '.venv/bin/python -m pip uninstall -y -q lxcframe-motd' EXIT
        .venv/bin/python -m pip install -q --no-deps --no-build-isolation "./$contrib"
        rm -rf "$contrib/build" "$contrib/lxcframe_motd.egg-info"
    fi
    contrib_status=0
    (cd "$contrib" && ../../.venv/bin/python -m pytest "$@") || contrib_status=$?
    # 5: nothing collected (a -k or -m of the main suite's that matches none of contrib's tests)
    if [ "$contrib_status" -ne 0 ] && [ "$contrib_status" -ne 5 ]; then status=$contrib_status; fi
fi
.venv/bin/python -m coverage combine -q
.venv/bin/python scripts/coverage_summary.py
exit "$status"
