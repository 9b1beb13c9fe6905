#!/bin/bash
# Memory: berth daemon idle RSS, and the cost of each idle container (its `berth shim`
# process, plus what the daemon grows by), next to docker (dockerd + containerd idle, one
# containerd-shim-runc-v2 per container) when docker.io is installed.
#
# Usage: bench/memory.sh                   (as root)
#   N=10                                   idle containers per engine
#   SETTLE=5                               seconds to wait before each snapshot
#   BERTH_PREBUILT=1 [BERTH=/path/berth]   skip `cargo build --release -p berth`
#   NO_DOCKER=1                            skip docker
#   WAIT_QUIET=SECONDS                     wait up to that long for cargo/rustc to finish first
#
# Method:
#   - a fresh daemon with its own data-root ($WORK/...) and exec-root (/run/bbm, /run/bbmd),
#     the busybox rootfs (scripts/make-busybox-rootfs.sh) imported as busybox:latest;
#   - "idle": SETTLE s after the import, no container has ever run;
#   - then N x `run -d --network none busybox sleep 1000`, SETTLE s, snapshot;
#   - RSS, PSS and USS (Private_Clean + Private_Dirty) from /proc/PID/smaps_rollup, in MiB.
#     RSS counts pages shared between the N shims (and the daemon: the berth shim is the
#     berth binary re-executed) N times; PSS splits shared pages between their users, so the
#     sum of PSS over the shims is what they really add. USS is what killing one would free.
#   - per container = (sum over shims + daemon growth) / N. The container's own process
#     (`sleep`) is not counted: it is the same for every engine.
source "$(dirname "$0")/lib.sh"

N=${N:-10}
SETTLE=${SETTLE:-5}
WORK=${WORK:-/var/tmp/berth-bench-mem}
NO_DOCKER=${NO_DOCKER:-0}

mkdir -p "$WORK"
exec 9>"$WORK.lock"
flock -n 9 || die "another memory.sh is running (lock $WORK.lock)"
scrub "$WORK"; mkdir -p "$WORK"
on_exit "scrub '$WORK'"

ensure_pkgs busybox:busybox-static python3:python3
command -v dockerd >/dev/null || NO_DOCKER=1
build_berth
tar=$(busybox_tar)

wait_quiet
quiet_start=$(build_activity && echo no || echo yes)

# sum_mem PID...: "RSS PSS USS" KiB summed
sum_mem() {
    local p r s u R=0 S=0 U=0
    for p in "$@"; do read -r r s u < <(mem "$p"); R=$((R + r)) S=$((S + s)) U=$((U + u)); done
    echo "$R $S $U"
}
# row LABEL "RSS PSS USS" (KiB) [DIVISOR] [NOTE]
ROWS=()
row() {
    local label=$1 d=${3:-1} note=${4:-} r s u
    read -r r s u <<<"$2"
    ROWS+=("| $label | $(mib $((r / d))) | $(mib $((s / d))) | $(mib $((u / d))) | $note |")
}
# per-shim spread: "min/median/max" of PSS in MiB
spread() {
    local p
    for p in "$@"; do mem "$p"; done | awk '{print $2}' | sort -n |
        awk '{a[NR]=$1} END {printf "PSS per shim min/median/max %.2f/%.2f/%.2f MiB", a[1]/1024, a[int((NR+1)/2)]/1024, a[NR]/1024}'
}

# ---------------------------------------------------------------- berth
log "berth: fresh daemon, import"
start_berth "$WORK/berth-data" /run/bbm
"$BERTH" -H "$BH" import "$tar" busybox:latest >/dev/null
sleep "$SETTLE"
b_idle=$(mem "$BERTH_PID")
threads_idle=$(awk '/^Threads:/ {print $2}' "/proc/$BERTH_PID/status")
log "berth: $N x run -d --network none busybox sleep 1000"
for i in $(seq 1 "$N"); do
    "$BERTH" -H "$BH" run -d --name "idle$i" --network none busybox sleep 1000 >/dev/null
done
sleep "$SETTLE"
mapfile -t shims < <(berth_shims /run/bbm)
[ "${#shims[@]}" -eq "$N" ] || die "expected $N berth shims, found ${#shims[@]}: ${shims[*]}"
running=$("$BERTH" -H "$BH" ps -q | wc -l)
b_busy=$(mem "$BERTH_PID")
s_sum=$(sum_mem "${shims[@]}")
s_spread=$(spread "${shims[@]}")
threads_busy=$(awk '/^Threads:/ {print $2}' "/proc/$BERTH_PID/status")
shim_threads=$(awk '/^Threads:/ {print $2}' "/proc/${shims[0]}/status")
read -r r0 s0 u0 <<<"$b_idle"; read -r r1 s1 u1 <<<"$b_busy"; read -r sr ss su <<<"$s_sum"
b_growth="$((r1 - r0)) $((s1 - s0)) $((u1 - u0))"
b_per="$(((sr + r1 - r0))) $(((ss + s1 - s0))) $(((su + u1 - u0)))"
"$BERTH" -H "$BH" rm -f $("$BERTH" -H "$BH" ps -aq) >/dev/null
sleep "$SETTLE"
b_after=$(mem "$BERTH_PID")

row "**berth daemon, idle** (after start + import)" "$b_idle" 1 "$threads_idle threads"
row "berth daemon, $N containers running" "$b_busy" 1 "$threads_busy threads"
row "berth daemon, after removing them" "$b_after"
row "**berth shim, per idle container**" "$s_sum" "$N" "$s_spread; $shim_threads thread(s) each"
row "berth daemon growth, per container" "$b_growth" "$N"
row "**berth total per idle container** (shim + daemon growth)" "$b_per" "$N" "$running running"
stop_berth "$WORK/berth-data" /run/bbm

# ---------------------------------------------------------------- docker
if [ "$NO_DOCKER" != 1 ]; then
    log "docker: fresh dockerd (own containerd), import"
    start_dockerd "$WORK/docker-data" /run/bbmd
    D="$DOCKER_CLI -H $DH"
    $D import "$tar" busybox:latest >/dev/null
    sleep "$SETTLE"
    ctrd=$(pgrep -P "$DOCKERD_PID" -x containerd)
    d_idle=$(mem "$DOCKERD_PID"); c_idle=$(mem "$ctrd")
    log "docker: $N x run -d --network none busybox sleep 1000"
    for i in $(seq 1 "$N"); do $D run -d --name "idle$i" --network none busybox sleep 1000 >/dev/null; done
    sleep "$SETTLE"
    # shims of *our* containerd: they are started with -address EXEC_ROOT/containerd/...
    mapfile -t dshims < <(pgrep -f "containerd-shim-runc-v2 .*-address /run/bbmd/")
    [ "${#dshims[@]}" -eq "$N" ] || die "expected $N containerd shims, found ${#dshims[@]}"
    drunning=$($D ps -q | wc -l)
    d_busy=$(mem "$DOCKERD_PID"); c_busy=$(mem "$ctrd")
    ds_sum=$(sum_mem "${dshims[@]}")
    ds_spread=$(spread "${dshims[@]}")
    read -r r0 s0 u0 <<<"$d_idle"; read -r r1 s1 u1 <<<"$d_busy"
    read -r q0 t0 v0 <<<"$c_idle"; read -r q1 t1 v1 <<<"$c_busy"
    read -r sr ss su <<<"$ds_sum"
    growth="$((r1 - r0 + q1 - q0)) $((s1 - s0 + t1 - t0)) $((u1 - u0 + v1 - v0))"
    per="$((sr + r1 - r0 + q1 - q0)) $((ss + s1 - s0 + t1 - t0)) $((su + u1 - u0 + v1 - v0))"
    row "dockerd, idle (after start + import)" "$d_idle"
    row "containerd (child of that dockerd), idle" "$c_idle"
    row "**dockerd + containerd, idle**" "$((r0 + q0)) $((s0 + t0)) $((u0 + v0))"
    row "**containerd-shim-runc-v2, per idle container**" "$ds_sum" "$N" "$ds_spread"
    row "dockerd + containerd growth, per container" "$growth" "$N"
    row "**docker total per idle container** (shim + daemons' growth)" "$per" "$N" "$drunning running"
    stop_dockerd "$WORK/docker-data" /run/bbmd
fi

quiet_end=$(build_activity && echo no || echo yes)
echo
echo "### Memory: idle daemon and per idle container"
echo
echo "$(machine_line). $(berth_build_info)."
[ "$NO_DOCKER" = 1 ] || echo "docker: dockerd $(dockerd --version | awk '{print $3}' | tr -d ,), containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}'); dockerd --bridge none --iptables=false."
echo "N = $N idle containers (\`run -d --network none busybox sleep 1000\`), snapshots $SETTLE s after the last action. Quiet machine (no cargo/rustc): at start $quiet_start, at end $quiet_end."
echo
echo "| what | RSS MiB | PSS MiB | USS MiB | notes |"
echo "|---|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
