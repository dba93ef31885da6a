#!/usr/bin/env bash
# Install lxcframe and run a real container built from the host's static busybox (no downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-host.sh
lxcframe=.venv/bin/lxcframe
lxcpath=$(mktemp -d /tmp/lxcframe-demo.XXXXXX)
trap '$lxcframe -P "$lxcpath" destroy -f demo >/dev/null 2>&1 || true; rm -rf "$lxcpath"' EXIT
set -x
# Keep the demo below this shell's own cgroups, as a service would (lxc.cgroup.relative).
printf 'lxc.cgroup.relative = 1\n' > "$lxcpath/extra.conf"
$lxcframe -P "$lxcpath" create demo -t busybox -f "$lxcpath/extra.conf"
$lxcframe -P "$lxcpath" start demo
$lxcframe -P "$lxcpath" info demo
$lxcframe -P "$lxcpath" attach demo -- /bin/sh -c 'echo "hello from $(hostname), pid 1 is $(cat /proc/1/comm)"; ps; grep -E " /(proc|sys|dev) " /proc/mounts'
$lxcframe -P "$lxcpath" stop demo -t 10
$lxcframe -P "$lxcpath" execute demo -- /bin/sh -c 'echo "an application container: my pid is $$"'
$lxcframe -P "$lxcpath" destroy demo
