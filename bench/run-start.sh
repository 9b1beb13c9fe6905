#!/bin/bash
# Container start+exit latency: `berth run --rm` against docker, podman and bare runc/crun.
#
# Usage: bench/run-start.sh                (as root)
#   BERTH_PREBUILT=1 [BERTH=/path/berth]   skip `cargo build --release -p berth`
#   RUNS=20 WARMUP=3                       hyperfine settings
#   DOCKER_CLI=/usr/bin/docker             CLI for the main docker row (Debian's 20.10, matches
#                                          dockerd 20.10); /usr/local/bin/docker (28.x), when
#                                          present, gets a row of its own
#   NO_PEERS=1                             only berth and runc
#   WAIT_QUIET=SECONDS                     wait up to that long for cargo/rustc (other people's
#                                          builds) to finish before measuring
#   KEEP_JSON=DIR                          keep the hyperfine JSON files in DIR
#
# Every engine gets its own roots, so nothing of the machine's default state is used or
# touched: berth daemon (data-root under $WORK, exec-root /run/bbr), dockerd with its own
# containerd (exec-root /run/bbd, --bridge none --iptables=false), podman (--root/--runroot),
# runc/crun (--root). All run the same busybox rootfs (scripts/make-busybox-rootfs.sh):
# imported as busybox:latest into berth, docker and podman, and unpacked into an OCI bundle
# (`runc spec` defaults, terminal false, args ["true"]) for bare runc and crun.
# Measured: hyperfine -N (no shell), --warmup 3 --runs 20, medians; ratio to bare runc.
#
# Changes made to the machine for the run and undone on exit (trap):
#   - hugetlb bound to a cgroup-v1 hierarchy when cgroup2 has controllers (crun 1.8 refuses
#     hybrid mode otherwise); unmounted again after;
#   - /etc/containers/containers.conf default_ulimits (root lacks CAP_SYS_RESOURCE, so
#     podman's 1048576 nofile/nproc fail) only when none are configured; restored after;
#   - ip_forward and the iptables FORWARD policy are put back as they were before dockerd;
#   - all roots are unmounted and removed; daemons stopped by their pids.
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
WORK=${WORK:-/var/tmp/berth-bench-run}
NO_PEERS=${NO_PEERS:-0}

mkdir -p "$WORK"
exec 9>"$WORK.lock"
flock -n 9 || die "another run-start.sh is running (lock $WORK.lock)"
scrub "$WORK"; mkdir -p "$WORK"
on_exit "scrub '$WORK'"

pkgs=(runc:runc hyperfine:hyperfine busybox:busybox-static python3:python3)
[ "$NO_PEERS" = 1 ] || pkgs+=(crun:crun podman:podman dockerd:docker.io)
ensure_pkgs "${pkgs[@]}"
[ -x "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker)
build_berth

tar=$(busybox_tar)
make_bundle "$tar" "$WORK/bundle"
HUGETLB_STATE="cgroups as booted"
[ "$NO_PEERS" = 1 ] || { hugetlb_fix; podman_ulimits; }

# berth
start_berth "$WORK/berth-data" /run/bbr
"$BERTH" -H "$BH" import "$tar" busybox:latest >/dev/null

# runc / crun state dirs of their own
RUNC_ROOT=/run/bbr-runc CRUN_ROOT=/run/bbr-crun
scrub "$RUNC_ROOT"; scrub "$CRUN_ROOT"
on_exit "scrub $RUNC_ROOT; scrub $CRUN_ROOT"

if [ "$NO_PEERS" != 1 ]; then
    start_dockerd "$WORK/docker-data" /run/bbd
    "$DOCKER_CLI" -H "$DH" import "$tar" busybox:latest >/dev/null
    PODMAN="podman --root $WORK/podman-root --runroot /run/bbp --tmpdir /run/bbp/libpod --events-backend file"
    scrub /run/bbp
    remove_if_new /etc/containers/networks /var/lib/containers /run/containers /run/libpod
    on_exit "$PODMAN rm -af -t 0 >/dev/null 2>&1; scrub /run/bbp"   # runs before scrub $WORK
    $PODMAN import "$tar" busybox:latest >/dev/null
fi

# label|command (hyperfine -N splits the command on spaces; no shell involved)
variants=(
    "berth|$BERTH -H $BH run --rm --network none busybox true"
)
if [ "$NO_PEERS" != 1 ]; then
    variants+=("docker ($("$DOCKER_CLI" --version | awk '{print $3}' | tr -d ,) CLI)|$DOCKER_CLI -H $DH run --rm --network none busybox true")
    if [ -x /usr/local/bin/docker ] && [ "$DOCKER_CLI" != /usr/local/bin/docker ]; then
        variants+=("docker ($(/usr/local/bin/docker --version | awk '{print $3}' | tr -d ,) CLI)|/usr/local/bin/docker -H $DH run --rm --network none busybox true")
    fi
    variants+=("podman|$PODMAN run --rm --network none busybox true")
fi
# runc/crun `run` in the foreground deletes the container when it exits, so one id serves
# every run (a leftover would make the next run fail, and hyperfine stop).
variants+=("runc|runc --root $RUNC_ROOT run -b $WORK/bundle bench-runc")
[ "$NO_PEERS" = 1 ] || variants+=("crun|crun --root $CRUN_ROOT run -b $WORK/bundle bench-crun")

wait_quiet
if build_activity; then
    QUIET="NO: cargo/rustc was running when the measurement started (noisy)"
else
    QUIET="yes (no cargo/rustc running at the start)"
fi
rows=()
for v in "${variants[@]}"; do
    label=${v%%|*} cmd=${v#*|}
    if ! out=$($cmd 2>&1 </dev/null); then
        log "SKIP $label: $out"
        rows+=("$label|$cmd|!$(echo "$out" | head -1 | tr '|' '/')")
        continue
    fi
    log "hyperfine: $label"
    json=$WORK/$(echo "$label" | tr -c 'a-zA-Z0-9.\n' _).json
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" --style basic \
        -n "$label" "$cmd" >&2 </dev/null
    rows+=("$label|$cmd|$json")
done
build_activity && QUIET="$QUIET; cargo/rustc running at the end"
if [ -n "${KEEP_JSON:-}" ]; then mkdir -p "$KEEP_JSON"; cp "$WORK"/*.json "$KEEP_JSON"/; fi

leftover="berth $("$BERTH" -H "$BH" ps -aq | wc -l), runc $(runc --root "$RUNC_ROOT" list -q 2>/dev/null | wc -l)"
[ "$NO_PEERS" = 1 ] || leftover="$leftover, crun $(crun --root "$CRUN_ROOT" list -q 2>/dev/null | wc -l), docker $("$DOCKER_CLI" -H "$DH" ps -aq | wc -l), podman $($PODMAN ps -aq | wc -l)"

# display paths: the long socket/root arguments make the table unreadable
short() { sed -e "s|$BERTH|berth|; s|$WORK|\$WORK|g; s| -H unix://[^ ]*||; s|$DOCKER_CLI|docker|; s|/usr/local/bin/docker|docker|; s|podman --root .* --events-backend file|podman|; s| --root [^ ]*||"; }
disp=()
for r in "${rows[@]}"; do
    IFS='|' read -r l c s <<<"$r"
    disp+=("$l|$(echo "$c" | short)|$s")
done

echo
echo "### run --rm: start + exit latency"
echo
echo "$(machine_line). $(berth_build_info)."
echo "Versions: $( { echo "runc $(runc --version | awk 'NR==1 {print $3}')";
    [ "$NO_PEERS" = 1 ] || { echo "crun $(crun --version | awk 'NR==1 {print $3}')";
    echo "podman $(podman --version | awk '{print $3}')";
    echo "dockerd $(dockerd --version | awk '{print $3}' | tr -d ,)"; };
    echo "hyperfine $(hyperfine --version | awk '{print $2}')"; } | paste -sd, | sed 's/,/, /g')."
echo "State: $HUGETLB_STATE. Quiet machine: $QUIET. hyperfine -N --warmup $WARMUP --runs $RUNS."
echo "Containers left after the runs: $leftover."
echo
python3 "$(dirname "$0")/hf_table.py" runc "${disp[@]}"
