#!/bin/bash
# Build a large, incompressible root filesystem tar for crash-safety tests and benchmarks.
#
# Usage: scripts/make-large-rootfs.sh OUT.tar SIZE_MIB
#
# Shape (roughly a fat distro image): 10% of the bytes in 4 KiB files, 20% in 64 KiB files,
# 30% in 1 MiB files, 40% in four big files; spread over a few directories. Data comes from
# /dev/urandom so compression cannot shrink it. Written to OUT.tar.tmp.$$ and renamed.
set -euo pipefail

out=${1:?usage: $0 OUT.tar SIZE_MIB}
size_mib=${2:?usage: $0 OUT.tar SIZE_MIB}
[ "$size_mib" -ge 16 ] || { echo "error: SIZE_MIB must be at least 16" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/large-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"

# fill DIR CHUNK_BYTES TOTAL_MIB: TOTAL_MIB of random data cut into CHUNK_BYTES files in DIR,
# fanned out over 16 subdirectories so no directory gets huge.
fill() {
    local dir=$1 chunk=$2 total_mib=$3 i
    [ "$total_mib" -gt 0 ] || return 0
    for i in $(seq 0 15); do
        mkdir -p "$root/$dir/d$i"
        head -c "$((total_mib * 1024 * 1024 / 16))" /dev/urandom |
            split -b "$chunk" -a 5 -d - "$root/$dir/d$i/f"
    done
}

fill usr/share/small 4096 $((size_mib / 10))
fill usr/lib/medium 65536 $((size_mib / 5))
fill opt/data 1048576 $((size_mib * 3 / 10))
mkdir -p "$root/var/big"
big_mib=$((size_mib * 2 / 5 / 4))
for i in 0 1 2 3; do
    head -c "$((big_mib * 1024 * 1024))" /dev/urandom >"$root/var/big/blob$i.bin"
done
mkdir -p "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"

mkdir -p "$(dirname "$out")"
tmp_out="$out.tmp.$$"
tar -C "$root" --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime='2024-01-01 00:00:00Z' -cf "$tmp_out" etc opt tmp usr var
mv -f "$tmp_out" "$out"
echo "$out: $(stat -c %s "$out") bytes, $(find "$root" -type f | wc -l) files" >&2
