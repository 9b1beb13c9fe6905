#!/bin/bash
# The project's test command: the one README and CI both run.
#
# Usage: scripts/test.sh [extra cargo test arguments...]
#
# Needs root (integration tests start real daemons), busybox-static, skopeo, and the docker
# CLI 28 at /usr/local/bin/docker (see .ci/run for the full setup). Fixtures are cached under
# /var/cache/berth-test; the busybox rootfs is built here up front so parallel tests do not
# race to build it.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=/var/cache/berth-test
mkdir -p "$cache"
[ -f "$cache/busybox-rootfs.tar" ] || scripts/make-busybox-rootfs.sh "$cache/busybox-rootfs.tar"
[ -f "$cache/large-rootfs-512m.tar" ] || scripts/make-large-rootfs.sh "$cache/large-rootfs-512m.tar" 512
# The python:3 base of the Flask example, from Debian packages (debootstrap; made once per
# machine): built while the tests compile.
py_log=$(mktemp)
scripts/make-python-image.sh --tar-only >"$py_log" 2>&1 &
py=$!
cargo test --workspace --no-run "$@"
if ! wait "$py"; then
    cat "$py_log" >&2
    echo "error: scripts/make-python-image.sh failed (needs debootstrap and the Debian mirror)" >&2
    exit 1
fi
rm -f "$py_log"

# --no-fail-fast: one failing test binary must not hide the results of the others.
exec cargo test --workspace --no-fail-fast "$@"
