#!/bin/bash
# Build a minimal busybox root filesystem as a tar, from Debian's busybox-static.
#
# Usage: scripts/make-busybox-rootfs.sh OUT.tar
#
# Contents: bin/busybox plus one symlink per applet (`busybox --list`), etc/passwd
# (root, nobody), etc/group, empty tmp (1777), proc, sys, dev, www, root.
# The tar is deterministic for a given busybox binary: entries sorted by name, a fixed
# mtime, owner 0:0 written numerically. It is written to OUT.tar.tmp.$$ and renamed, so a
# concurrent reader never sees a half-written file.
set -euo pipefail

out=${1:?usage: $0 OUT.tar}
busybox=${BUSYBOX:-/bin/busybox}

if [ ! -x "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1; then
    echo "error: $busybox is missing or not a busybox binary; run: apt-get install busybox-static" >&2
    exit 1
fi
# A dynamically linked busybox (Debian's `busybox` package) would not run inside an
# image that has no libc; insist on the static one.
if command -v file >/dev/null 2>&1 && file -L "$busybox" | grep -q 'dynamically linked'; then
    echo "error: $busybox is dynamically linked; run: apt-get install busybox-static" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,www,root}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
chmod 0755 "$root"/{bin,etc,proc,sys,dev,www}

install -m 0755 "$busybox" "$root/bin/busybox"
"$busybox" --list | while read -r applet; do
    [ -n "$applet" ] && [ "$applet" != busybox ] && ln -s busybox "$root/bin/$applet"
done

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
chmod 0644 "$root/etc/passwd" "$root/etc/group"

mkdir -p "$(dirname "$out")"
tmp_out="$out.tmp.$$"
tar -C "$root" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime='2024-01-01 00:00:00Z' --format=gnu -cf "$tmp_out" \
    bin dev etc proc root sys tmp www
mv -f "$tmp_out" "$out"
echo "$out: $(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -d' ' -f1)" >&2
