# Helpers shared by bench/run-start.sh and bench/memory.sh. Source it, don't run it.
#
# Every piece of state a benchmark creates is recorded here (pids, mounts, files it changed)
# and undone by `bench_cleanup`, which the scripts run from an EXIT trap. Processes are only
# ever stopped by the pids we recorded, never by name.
#
# Paths: unix socket paths are limited to 107 bytes, and berth puts
# EXEC_ROOT/containers/<64 hex>/shim/shim.sock under its exec-root, so exec-roots have to be
# short (<= 16 characters): they live directly under /run.

set -euo pipefail

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BERTH=${BERTH:-$BENCH_REPO/target/release/berth}
DOCKER_CLI=${DOCKER_CLI:-/usr/bin/docker}      # Debian's 20.10 CLI, matching dockerd 20.10
BB_CACHE=${BB_CACHE:-/var/cache/berth-bench}    # busybox rootfs tar (kept between runs)

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (the engines need it)"

# --- cleanup stack: functions registered here run in reverse order on exit -------------
_cleanups=()
on_exit() { _cleanups+=("$*"); }
bench_cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    set +e
    for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do eval "${_cleanups[$i]}"; done
    return $rc
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# --- packages -----------------------------------------------------------------------------
# ensure_pkgs CMD:PKG ...  installs PKG with apt-get when CMD is not found.
ensure_pkgs() {
    local missing=() p
    for p in "$@"; do command -v "${p%%:*}" >/dev/null 2>&1 || missing+=("${p#*:}"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "apt-get install ${missing[*]}"
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# --- berth binary ---------------------------------------------------------------------------
build_berth() {
    if [ "${BERTH_PREBUILT:-0}" != 1 ]; then
        log "cargo build --release -p berth"
        (cd "$BENCH_REPO" && cargo build --release -p berth >&2)
    fi
    [ -x "$BERTH" ] || die "$BERTH not found (set BERTH=... or unset BERTH_PREBUILT)"
}

# Describe the berth binary: commit of the repo it was built from, and whether the tree
# was dirty (other people edit the same checkout). BERTH_DESC=... overrides, e.g. for a
# binary built elsewhere with BERTH_PREBUILT=1.
berth_build_info() {
    local c d
    if [ -n "${BERTH_DESC:-}" ]; then echo "$BERTH_DESC"; return; fi
    c=$(git -C "$BENCH_REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
    d=$(git -C "$BENCH_REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -vc '^.. bench/' || true)
    echo "commit $c$([ "${d:-0}" -gt 0 ] && echo " (+$d modified tracked files in the tree)"), binary $BERTH"
}

# --- busybox image ------------------------------------------------------------------------
# busybox_tar: prints the path of a busybox rootfs tar built by scripts/make-busybox-rootfs.sh.
busybox_tar() {
    local t=$BB_CACHE/busybox-rootfs.tar
    mkdir -p "$BB_CACHE"
    [ -s "$t" ] || "$BENCH_REPO/scripts/make-busybox-rootfs.sh" "$t" 2>/dev/null
    echo "$t"
}

# make_bundle TAR DIR: OCI bundle (runc spec defaults, terminal false, args ["true"]).
make_bundle() {
    local tar=$1 dir=$2
    rm -rf "$dir"; mkdir -p "$dir/rootfs"
    tar -xf "$tar" -C "$dir/rootfs"
    (cd "$dir" && runc spec)
    python3 - "$dir/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
json.dump(c, open(p, "w"), indent=2)
EOF
}

# --- mounts and directories ---------------------------------------------------------------
# scrub DIR: unmount everything at or below DIR (deepest first), then remove DIR.
scrub() {
    local dir=$1 m
    [ -n "$dir" ] && [ "$dir" != / ] || return 0
    [ -e "$dir" ] || return 0
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$dir"
}

# --- berth daemon -------------------------------------------------------------------------
# start_berth DATA_ROOT EXEC_ROOT [DAEMON ARGS...]: fresh daemon; sets BERTH_PID and BH (the
# -H argument). Extra arguments go to `berth daemon` (e.g. --bridge NAME --bip CIDR).
BERTH_PID=
start_berth() {
    local data=$1 exec=$2
    shift 2
    scrub "$data"; scrub "$exec"
    mkdir -p "$data" "$exec"
    BH="unix://$exec/berth.sock"
    "$BERTH" daemon --data-root "$data" --exec-root "$exec" -H "$BH" "$@" \
        >"$data.daemon.log" 2>&1 </dev/null &
    BERTH_PID=$!
    on_exit "stop_berth '$data' '$exec'"
    for _ in $(seq 1 200); do
        "$BERTH" -H "$BH" version >/dev/null 2>&1 && return 0
        kill -0 "$BERTH_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$data.daemon.log" >&2
    die "berth daemon did not start"
}

# shim pids of containers under EXEC_ROOT (argv: <exe> shim start ... --state-dir EXEC_ROOT/...)
berth_shims() {
    local exec=$1 p
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "^[^ ]* shim start .* $exec/" &&
            echo "${p#/proc/}"
    done
    return 0
}

stop_berth() {
    local data=$1 exec=$2 ids p
    if [ -n "$BERTH_PID" ] && kill -0 "$BERTH_PID" 2>/dev/null; then
        ids=$("$BERTH" -H "unix://$exec/berth.sock" ps -aq 2>/dev/null || true)
        [ -z "$ids" ] || "$BERTH" -H "unix://$exec/berth.sock" rm -f $ids >/dev/null 2>&1 || true
        kill -TERM "$BERTH_PID" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$BERTH_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$BERTH_PID" 2>/dev/null || true
        wait "$BERTH_PID" 2>/dev/null || true
    fi
    BERTH_PID=
    # shims that outlived the daemon (started by it, so ours): stop by pid
    for p in $(berth_shims "$exec"); do kill -KILL "$p" 2>/dev/null || true; done
    sleep 0.2
    scrub "$exec"; scrub "$data"; rm -f "$data.daemon.log"
}

# --- dockerd (own data-root, exec-root, socket; no bridge, no iptables) -------------------
# start_dockerd DATA_ROOT EXEC_ROOT [NETWORK ARGS...]: sets DOCKERD_PID and DH (the -H
# argument). NETWORK ARGS, when given, replace the default `--bridge none --iptables=false
# --ip-forward=false --ip-masq=false` (e.g. bench/ports.sh: --bip CIDR with iptables on).
DOCKERD_PID=
start_dockerd() {
    local data=$1 exec=$2
    shift 2
    local net=("$@")
    [ ${#net[@]} -gt 0 ] || net=(--bridge none --iptables=false --ip-forward=false --ip-masq=false)
    save_net_state
    scrub "$data"; scrub "$exec"
    mkdir -p "$data" "$exec"
    DH="unix://$exec/docker.sock"
    setsid dockerd --data-root "$data" --exec-root "$exec" -H "$DH" --pidfile "$exec/dockerd.pid" \
        "${net[@]}" >"$data.dockerd.log" 2>&1 </dev/null &
    DOCKERD_PID=$!
    on_exit "stop_dockerd '$data' '$exec'"
    for _ in $(seq 1 120); do
        "$DOCKER_CLI" -H "$DH" version >/dev/null 2>&1 && return 0
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.25
    done
    tail -20 "$data.dockerd.log" >&2
    die "dockerd did not start"
}

stop_dockerd() {
    local data=$1 exec=$2 ids
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        ids=$("$DOCKER_CLI" -H "unix://$exec/docker.sock" ps -aq 2>/dev/null || true)
        [ -z "$ids" ] || "$DOCKER_CLI" -H "unix://$exec/docker.sock" rm -f $ids >/dev/null 2>&1 || true
        kill -TERM "$DOCKERD_PID"   # dockerd stops the containerd it started
        for _ in $(seq 1 120); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "$DOCKERD_PID" 2>/dev/null || true
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    DOCKERD_PID=
    sleep 0.5
    scrub "$exec"; scrub "$data"; rm -f "$data.dockerd.log"
    restore_net_state
}

# dockerd (even with --iptables=false) may touch ip_forward and the FORWARD policy;
# remember both before the first dockerd start and put them back after the last stop.
_net_saved=
save_net_state() {
    [ -n "$_net_saved" ] && return 0
    _net_saved=1
    SAVED_IP_FORWARD=$(cat /proc/sys/net/ipv4/ip_forward)
    SAVED_FORWARD_POLICY=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3}' || true)
    SAVED_FORWARD_POLICY=${SAVED_FORWARD_POLICY:-ACCEPT}
}
restore_net_state() {
    [ -n "$_net_saved" ] || return 0
    echo "$SAVED_IP_FORWARD" >/proc/sys/net/ipv4/ip_forward
    iptables -P FORWARD "$SAVED_FORWARD_POLICY" 2>/dev/null || true
}

# --- crun on hybrid cgroups ----------------------------------------------------------------
# crun 1.8 refuses to run while cgroup2 (hybrid mode) has any controller; on this VM kind
# that is only hugetlb. Binding hugetlb to a v1 hierarchy empties the list. Undone on exit.
hugetlb_fix() {
    local u=/sys/fs/cgroup/unified/cgroup.controllers
    [ -r "$u" ] && [ -n "$(cat "$u")" ] || return 0
    grep -qw hugetlb "$u" || return 0
    log "cgroup2 (hybrid) has controllers '$(cat "$u")': binding hugetlb to a v1 hierarchy for crun"
    mkdir -p /sys/fs/cgroup/hugetlb
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
    on_exit hugetlb_undo
    HUGETLB_STATE="hugetlb moved to cgroup v1 for the run (crun needs an empty cgroup2 controller list)"
}
hugetlb_undo() {
    # Remove the empty child cgroups and unmount. Dying child cgroups can keep the hierarchy
    # alive after umount; mounting and unmounting once more then releases it. Anything else
    # that started containers while hugetlb was on v1 (e.g. tests running concurrently) may
    # have cgroups there that are still in use: retry for up to HUGETLB_UNDO_WAIT seconds.
    local h left=${HUGETLB_UNDO_WAIT:-60} busy
    while :; do
        h=$(awk '$1 == "hugetlb" {print $2}' /proc/cgroups)
        [ "$h" = 0 ] && return 0
        mkdir -p /sys/fs/cgroup/hugetlb
        mountpoint -q /sys/fs/cgroup/hugetlb || mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
        find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
        busy=$(find /sys/fs/cgroup/hugetlb -mindepth 1 -type d 2>/dev/null | head -3)
        sleep 1
        umount /sys/fs/cgroup/hugetlb 2>/dev/null && rmdir /sys/fs/cgroup/hugetlb
        sleep 1
        left=$((left - 2))
        if [ "$left" -le 0 ]; then
            log "WARNING: hugetlb still on cgroup-v1 hierarchy $h; cgroups in use: ${busy:-none}"
            log "  undo later with: mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb; rmdir the empty cgroups; umount (twice if needed)"
            return 0
        fi
    done
}

# --- podman rlimits --------------------------------------------------------------------------
# root here lacks CAP_SYS_RESOURCE, so podman's default nofile/nproc of 1048576 cannot be
# granted. Add default_ulimits to containers.conf only if none are configured; restore after.
podman_ulimits() {
    local f=/etc/containers/containers.conf
    if [ -f "$f" ] && grep -q '^[[:space:]]*default_ulimits' "$f"; then return 0; fi
    if [ -f "$f" ]; then
        cp -p "$f" "$f.berth-bench.orig"
        on_exit "mv -f '$f.berth-bench.orig' '$f'"
        if grep -q '^\[containers\]' "$f"; then
            sed -i '/^\[containers\]/a default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' "$f"
        else
            printf '\n[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' >>"$f"
        fi
    else
        mkdir -p /etc/containers
        printf '# temporary, bench/run-start.sh (root lacks CAP_SYS_RESOURCE)\n[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' >"$f"
        on_exit "rm -f '$f'"
    fi
}

# remove_if_new PATH...: PATHs that do not exist now are removed on exit (tools such as podman
# create cache/lock directories outside the roots they are given).
remove_if_new() {
    local p
    for p in "$@"; do [ -e "$p" ] || on_exit "scrub '$p'"; done
}

# --- memory of one process -------------------------------------------------------------------
# mem PID: prints "RSS PSS USS" in KiB from /proc/PID/smaps_rollup (USS = private clean+dirty).
mem() {
    awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} /^Private_(Clean|Dirty):/ {u+=$2} END {print r+0, p+0, u+0}' \
        "/proc/$1/smaps_rollup"
}
mib() { awk -v k="$1" 'BEGIN {printf "%.2f", k / 1024}'; }

# quiet: true when no cargo/rustc is running (someone else building on this 2-core VM)
build_activity() { pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; }
# wait_quiet: wait up to $WAIT_QUIET seconds (default 0) for builds to finish.
wait_quiet() {
    local left=${WAIT_QUIET:-0}
    build_activity || return 0
    [ "$left" -gt 0 ] && log "waiting up to ${left}s for cargo/rustc to finish"
    while [ "$left" -gt 0 ] && build_activity; do sleep 5; left=$((left - 5)); done
}

machine_line() {
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
}
