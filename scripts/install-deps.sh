#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds, tests, benchmarks and demos with.
# Idempotent; run as root. The Swift 6 toolchain itself is expected in PATH or at /opt/swift.
set -euo pipefail

packages=(
    libfuse3-dev fuse3 pkg-config     # ReplFS: libfuse3 and the FUSE userland
    sqlite3 postgresql postgresql-contrib  # real applications on the mount (tests, demo, bench)
    fio bindfs                        # benchmark workloads and the FUSE passthrough peer
    python3 bc util-linux attr iproute2 procps psmisc  # test helpers: locks, xattrs, namespaces, processes
    iputils-ping                      # the cluster's ping checkers run ping(8)
)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Installing postgresql may start a system cluster; tests and benchmarks run their own, so it is not needed.
modprobe fuse 2>/dev/null || true
modprobe -a veth bridge 2>/dev/null || true   # the virtual IP tests' namespace lab (built in on many kernels)
