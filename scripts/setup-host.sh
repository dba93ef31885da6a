#!/usr/bin/env bash
# Install what lxcframe needs on a Debian 12 host (as root) and a virtualenv in .venv.
# Safe to run again. Never starts lxc-net or dnsmasq: the LXC bridge is switched off before the
# lxc package (installed for its stock config files and as the benchmark peer) is configured.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host: run as root (containers need it)" >&2
    exit 1
fi

packages=(lxc python3-lxc rsync busybox-static tini zstd apparmor libseccomp2 iproute2 keyutils gcc libc6-dev strace uidmap
          runc podman conmon catatonit containerd crun)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    mkdir -p /etc/default
    if ! grep -qs '^USE_LXC_BRIDGE="false"' /etc/default/lxc-net; then
        echo 'USE_LXC_BRIDGE="false"' >> /etc/default/lxc-net
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # confold: keep our /etc/default/lxc-net instead of prompting about it.
    apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
fi

# podman reads this drop-in: error messages of lxcframe-oci as JSON (it passes --log only to runtimes it
# lists), and, on a host that cannot raise a hard limit (no CAP_SYS_RESOURCE, as in a container VM),
# default limits within the current ones instead of podman's 1048576 open files, which no runtime can
# set there (runc fails the same way).
mkdir -p /etc/containers/containers.conf.d
{
    capbnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
    if (( (16#$capbnd >> 24) & 1 )); then
        echo "[containers]"
    else
        nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
        echo "[containers]"
        echo "default_ulimits = [\"nofile=$(ulimit -Hn):$(ulimit -Hn)\", \"nproc=$nproc:$nproc\"]"
    fi
    echo "[engine]"
    echo 'runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "lxcframe-oci"]'
} > /etc/containers/containers.conf.d/lxcframe.conf

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# Not editable: an editable install's import hook costs every command ~15 ms; tests import the
# working tree (they run from the repository root) and reinstalling is part of every run.
.venv/bin/python -m pip install -q --force-reinstall --no-deps . && .venv/bin/python -m pip install -q '.[test]'
# podman, containerd and Kubernetes call a runtime by its path: lxcframe-oci is found on PATH (the
# README's podman line asks `command -v lxcframe-oci`), pointing at this checkout's virtualenv.
ln -sfn "$PWD/.venv/bin/lxcframe-oci" /usr/local/bin/lxcframe-oci
