#!/bin/bash
# Makes the `python:3` base image from Debian packages, for machines that
# cannot reach Docker Hub: debootstrap --variant=minbase of the host's Debian
# release with python3, pip, `python` on PATH (python-is-python3),
# ca-certificates, Debian's python3-flask (so the Flask example also
# builds where no package index is reachable) and, as in the official image,
# a C compiler (gcc, libc6-dev: static binaries link against libc.a). Like the official image, pip
# may install into the system interpreter: Debian's EXTERNALLY-MANAGED
# marker (PEP 668) is removed.
#
# The root file system is cached as a tar (sorted, fixed mtimes, numeric
# owners: the same packages give the same tar) under $CACHE, made once per
# machine; the image is imported into the engine at $BERTH_HOST (or the
# default socket) and tagged python:3 unless it is there already.
#
# Usage: scripts/make-python-image.sh [--tar-only]     (as root)
#   CACHE=/var/cache/berth-test  MIRROR=http://deb.debian.org/debian  BERTH=berth
set -euo pipefail

CACHE=${CACHE:-/var/cache/berth-test}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
BERTH=${BERTH:-berth}
SUITE=${SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}
# The name's version changes with the package list, so a tar cached by an
# older version of this script is never reused.
TAR="$CACHE/python3-$SUITE-v2-rootfs.tar"

[ "$(id -u)" = 0 ] || { echo "error: run as root (debootstrap needs it)" >&2; exit 1; }

if [ ! -s "$TAR" ]; then
    command -v debootstrap >/dev/null || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
    }
    mkdir -p "$CACHE"
    ROOT=$(mktemp -d "$CACHE/python3-root.XXXXXX")
    trap 'rm -rf "$ROOT"' EXIT
    echo "debootstrap $SUITE (minbase + python3 + gcc) from $MIRROR ..." >&2
    debootstrap --variant=minbase \
        --include=python3,python3-pip,python-is-python3,python3-flask,ca-certificates,gcc,libc6-dev \
        "$SUITE" "$ROOT" "$MIRROR" >&2
    rm -f "$ROOT"/usr/lib/python3*/EXTERNALLY-MANAGED
    chroot "$ROOT" apt-get clean
    rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/log/* \
        "$ROOT"/tmp/* "$ROOT"/root/.cache
    find "$ROOT" -name __pycache__ -type d -prune -exec rm -rf {} +
    tar -C "$ROOT" --sort=name --mtime=@0 --numeric-owner --xattrs -cf "$TAR.tmp" .
    mv "$TAR.tmp" "$TAR"
    echo "cached $TAR ($(du -h "$TAR" | cut -f1))" >&2
fi

[ "${1:-}" = --tar-only ] && { echo "$TAR"; exit 0; }

if "$BERTH" image inspect python:3 >/dev/null 2>&1; then
    echo "python:3 is already in the engine" >&2
    exit 0
fi
"$BERTH" import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["python3"]' \
    -m "python:3 from Debian $SUITE packages (scripts/make-python-image.sh)" \
    "$TAR" python:3
