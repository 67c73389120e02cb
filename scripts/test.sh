#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (packages) and runs the whole test suite on real FUSE mounts.
# Must run as root: the tests mount filesystems, run databases as other users and use /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "error: run as root (the tests mount real filesystems)" >&2; exit 1; }
scripts/install-deps.sh
source scripts/swift-env.sh
swift build --build-tests
swift test --disable-swift-testing "$@"
