#!/bin/bash
# How close do `berth import` and `berth save` get to the machine's physical bound?
#
# Usage: bench/import-save.sh            (as root; RUNS=3 SIZE_MIB=1024 by default)
#
# The input is a ~1 GiB rootfs tar of incompressible data (many 4 KiB-1 MiB files plus a few
# big ones), built once by scripts/make-large-rootfs.sh and cached under /var/cache/berth-bench.
# The bound is what any importer must at least do: unpack the tar onto the same filesystem as
# the data-root (`tar -x`) and hash it once (the faster of `sha256sum` and `openssl dgst
# -sha256`); timed separately and summed.
# berth is timed end to end through its CLI against a fresh daemon with a fresh data-root per
# run (release build). Page caches are dropped before every timed step when the kernel lets
# us (otherwise everything is measured warm, and the table says so). Medians of RUNS runs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
SIZE_MIB=${SIZE_MIB:-1024}
CACHE=${CACHE:-/var/cache/berth-bench}
WORK=${WORK:-/var/tmp/berth-bench}   # data-roots and extraction dirs live here (same filesystem)
BERTH=${BERTH:-$repo/target/release/berth}

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "error: run as root (the daemon needs it)" >&2; exit 1; }

mkdir -p "$CACHE" "$WORK"
# Two runs at once would share $WORK/run and measure each other.
exec 9>"$WORK/.lock"
flock -n 9 || { echo "error: another benchmark is running (lock $WORK/.lock)" >&2; exit 1; }
tarball=$CACHE/rootfs-${SIZE_MIB}m.tar
if [ ! -f "$tarball" ]; then
    log "generating $tarball (once)"
    "$repo/scripts/make-large-rootfs.sh" "$tarball" "$SIZE_MIB"
fi
bytes=$(stat -c %s "$tarball")

if [ -z "${BERTH_PREBUILT:-}" ]; then
    log "building release binary"
    (cd "$repo" && cargo build --release -p berth --bin berth >&2)
fi
[ -x "$BERTH" ] || { echo "error: $BERTH not found" >&2; exit 1; }

cold=no
if sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then cold=yes; fi
settle() {
    sync
    [ "$cold" = yes ] && echo 3 >/proc/sys/vm/drop_caches
    return 0
}

now() { date +%s.%N; }
calc() { awk "BEGIN { print $* }"; }
elapsed() { calc "$2 - $1"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# Unmount anything below $1 (deepest first) and remove it.
scrub() {
    local dir=$1 m
    [ -e "$dir" ] || return 0
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf "$dir"
}

daemon_pid=
stop_daemon() {
    [ -n "$daemon_pid" ] || return 0
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=
}
trap 'stop_daemon; scrub "$WORK/run"' EXIT

start_daemon() {
    local root=$1
    mkdir -p "$root/data" "$root/exec"
    "$BERTH" daemon --data-root "$root/data" --exec-root "$root/exec" \
        -H "unix://$root/exec/berth.sock" >"$root/daemon.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 1 200); do
        "$BERTH" -H "unix://$root/exec/berth.sock" version >/dev/null 2>&1 && return 0
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "error: daemon did not start; log:" >&2; cat "$root/daemon.log" >&2; exit 1
}

x_times=() h_times=() o_times=() b_times=() i_times=() s_times=()
have_openssl=no; command -v openssl >/dev/null 2>&1 && have_openssl=yes
for run in $(seq 1 "$RUNS"); do
    log "run $run/$RUNS"
    scrub "$WORK/run"; mkdir -p "$WORK/run/extract"

    settle; t0=$(now); tar -xf "$tarball" -C "$WORK/run/extract"; sync; t1=$(now)
    settle; t2=$(now); sha256sum "$tarball" >/dev/null; t3=$(now)
    x=$(elapsed "$t0" "$t1"); h=$(elapsed "$t2" "$t3")
    h_times+=("$h")
    # Debian's coreutils sha256sum does not use the CPU's SHA extensions; OpenSSL does.
    # The bound takes the faster of the two hashers.
    if [ "$have_openssl" = yes ]; then
        settle; t2=$(now); openssl dgst -sha256 "$tarball" >/dev/null; t3=$(now)
        o=$(elapsed "$t2" "$t3"); o_times+=("$o")
        h=$(calc "($o < $h) ? $o : $h")
    fi
    x_times+=("$x"); b_times+=("$(calc "$x + $h")")
    rm -rf "$WORK/run/extract"

    start_daemon "$WORK/run"
    host="unix://$WORK/run/exec/berth.sock"
    settle; t0=$(now); "$BERTH" -H "$host" import "$tarball" bench:latest >/dev/null; sync; t1=$(now)
    i_times+=("$(elapsed "$t0" "$t1")")
    settle; t0=$(now); "$BERTH" -H "$host" save -o "$WORK/run/saved.tar" bench:latest; sync; t1=$(now)
    s_times+=("$(elapsed "$t0" "$t1")")
    saved_bytes=$(stat -c %s "$WORK/run/saved.tar")
    [ "$saved_bytes" -ge "$bytes" ] || { echo "error: saved archive smaller than input" >&2; exit 1; }
    stop_daemon
    scrub "$WORK/run"
done

bound=$(printf '%s\n' "${b_times[@]}" | median)
row() { # name times...
    local name=$1; shift
    local m; m=$(printf '%s\n' "$@" | median)
    printf '| %s | %.2f | %.0f | %.2f |\n' "$name" "$m" "$(calc "$bytes / 1000000 / $m")" \
        "$(calc "$m / $bound")"
}

echo
echo "Input: $tarball, $((bytes / 1024 / 1024)) MiB; $RUNS runs, medians; page cache dropped before each step: $cold."
echo "Machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(df -h --output=source,fstype "$WORK" | tail -1 | tr -s ' ')."
echo
echo "| operation | seconds | MB/s | ratio to bound |"
echo "|---|---:|---:|---:|"
row 'tar -x (+sync)' "${x_times[@]}"
row 'sha256sum' "${h_times[@]}"
[ "$have_openssl" = yes ] && row 'openssl dgst -sha256' "${o_times[@]}"
row '**bound** = tar -x + fastest hash' "${b_times[@]}"
row 'berth import (+sync)' "${i_times[@]}"
row 'berth save -o (+sync)' "${s_times[@]}"
