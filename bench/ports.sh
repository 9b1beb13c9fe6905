#!/bin/bash
# Published ports: download throughput and connection rate through a published port, against
# the container's own IP, for berth (nftables DNAT in the kernel) and docker (Debian's dockerd
# 20.10 with its defaults: iptables on, userland-proxy on).
#
# Usage: bench/ports.sh                  (as root)
#   BERTH_PREBUILT=1 [BERTH=/path/berth] skip `cargo build --release -p berth`
#   N=5                                  timed downloads per path (after 1 warm-up)
#   AB_RUNS=3 AB_N=2000 AB_C=8           `ab -n AB_N -c AB_C` per path, AB_RUNS times
#   SIZE_MIB=1024                        size of the served random file
#   WAIT_QUIET=SECONDS                   wait up to that long for cargo/rustc (other people's
#                                        builds) to finish before measuring
#   NO_DOCKER=1                          berth only
#
# Setup: one busybox container per engine, `httpd -f -p 80 -h /www`, image busybox imported
# from scripts/make-busybox-rootfs.sh, /www a read-only bind mount of $BB_CACHE/www holding
# big.bin (SIZE_MIB of /dev/urandom, made once, read into the page cache before measuring)
# and small.html (612 B). Each container publishes port 80 twice:
#   -p 127.0.0.1:PORT_LO:80 -p HOSTADDR:PORT_HOST:80
# where HOSTADDR is the address of the default route's interface. Three paths per engine:
# published 127.0.0.1, published HOSTADDR, and the container's IP:80 directly.
#   - berth: `berth daemon --bridge bbench0 --bip 10.251.0.1/24` (data-root under $WORK,
#     exec-root /run/bbn); ports 18480 (127.0.0.1) and 18481 (HOSTADDR).
#   - docker: dockerd with its own data/exec-root (/run/bbdn) and containerd, default bridge
#     networking on its own bridge: docker0 with --bip 10.252.0.1/24 when no docker0 exists,
#     else a bridge dbench0 made here (10.252.0.1/24) and --bridge dbench0. iptables on and
#     userland-proxy on (defaults), so 127.0.0.1 goes through docker-proxy (docker's nat
#     OUTPUT rule skips 127.0.0.0/8) while HOSTADDR is DNATed by iptables. --ip-forward=false:
#     host-to-container traffic is not forwarded, and dockerd would otherwise set the FORWARD
#     policy to DROP when it turns ip_forward on, breaking anyone else's containers meanwhile.
#     Ports 18490 (127.0.0.1) and 18491 (HOSTADDR).
# Both daemons run side by side and the paths are measured interleaved (run 1 of every path,
# then run 2, ...), so drift from other load on the machine hits all paths alike.
# Measured:
#   - throughput: `curl -o /dev/null -w '%{speed_download}'` (size checked), 1 warm-up + N
#     runs per path, median MB/s (1e6 B/s) and % of the same engine's direct path;
#   - connection rate: `ab -n 2000 -c 8 http://ADDR/small.html` (HTTP/1.0, one connection per
#     request), AB_RUNS runs per path, median requests/s; failed requests are reported.
# Traffic goes only to 127.0.0.1, the host's own address, and the two bridges.
#
# Changes made to the machine for the run and undone on exit (trap): the bridges bbench0 and
# docker0/dbench0 and berth's nftables table berth_bbench0 are deleted; docker's iptables
# rules and DOCKER* chains that were not there before are deleted (and the nft table `ip nat`
# if iptables created it and it is empty); ip_forward, the FORWARD policy and
# bridge-nf-call-ip(6)tables are put back; daemons stopped by pid, roots removed.
source "$(dirname "$0")/lib.sh"

N=${N:-5}
AB_RUNS=${AB_RUNS:-3}
AB_N=${AB_N:-2000}
AB_C=${AB_C:-8}
SIZE_MIB=${SIZE_MIB:-1024}
NO_DOCKER=${NO_DOCKER:-0}
WORK=${WORK:-/var/tmp/berth-bench-ports}
WWW=$BB_CACHE/www
B_BRIDGE=bbench0 B_BIP=10.251.0.1/24 B_EXEC=/run/bbn B_LO=18480 B_HOST=18481
D_BIP=10.252.0.1/24 D_EXEC=/run/bbdn D_LO=18490 D_HOST=18491

mkdir -p "$WORK"
exec 9>"$WORK.lock"
flock -n 9 || die "another ports.sh is running (lock $WORK.lock)"
scrub "$WORK"; mkdir -p "$WORK"
on_exit "scrub '$WORK'"

pkgs=(curl:curl ab:apache2-utils busybox:busybox-static python3:python3 nft:nftables)
[ "$NO_DOCKER" = 1 ] || pkgs+=(dockerd:docker.io iptables:iptables)
ensure_pkgs "${pkgs[@]}"
[ -x "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker)
build_berth

for p in $B_LO $B_HOST $D_LO $D_HOST; do
    if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is in use"; fi
done
HOSTIF=$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
HOSTADDR=$(ip -4 -o addr show dev "$HOSTIF" scope global | awk '{split($4, a, "/"); print a[1]; exit}')
[ -n "$HOSTADDR" ] || die "no IPv4 address on the default route's interface '$HOSTIF'"

# --- network state: saved now, put back last ---------------------------------------------
leftover_check() {   # runs last: says what (if anything) is still there
    local left=
    for l in bbench0 dbench0; do ip link show "$l" >/dev/null 2>&1 && left="$left link $l;"; done
    [ "${D_BRIDGE:-}" = docker0 ] && ip link show docker0 >/dev/null 2>&1 && left="$left link docker0;"
    nft list table ip "berth_$B_BRIDGE" >/dev/null 2>&1 && left="$left nft table berth_$B_BRIDGE;"
    iptables -S 2>/dev/null | grep -q DOCKER && left="$left iptables filter DOCKER rules;"
    iptables -t nat -S 2>/dev/null | grep -q DOCKER && left="$left iptables nat DOCKER rules;"
    if [ -n "$left" ]; then log "WARNING: left over after cleanup:$left"; else log "cleanup verified: no bridge, nft table or DOCKER chain left"; fi
}
on_exit leftover_check
save_net_state
on_exit restore_net_state
BRNF=()
for f in /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-ip6tables; do
    [ -w "$f" ] && BRNF+=("$f=$(cat "$f")")
done
restore_brnf() { local kv; for kv in "${BRNF[@]}"; do echo "${kv#*=}" >"${kv%%=*}"; done; }
on_exit restore_brnf

# --- files served --------------------------------------------------------------------------
mkdir -p "$WWW"
big=$WWW/big.bin
if [ "$(stat -c %s "$big" 2>/dev/null || echo 0)" != $((SIZE_MIB * 1048576)) ]; then
    log "writing $big ($SIZE_MIB MiB of /dev/urandom)"
    head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$big.tmp.$$" && mv "$big.tmp.$$" "$big"
fi
[ -s "$WWW/small.html" ] || python3 -c 'print("<!DOCTYPE html><html><body>" + "x" * 570 + "</body></html>", end="")' >"$WWW/small.html"
BIG_SIZE=$(stat -c %s "$big")
SMALL_SIZE=$(stat -c %s "$WWW/small.html")
cat "$big" "$WWW/small.html" >/dev/null    # page cache
tar=$(busybox_tar)

wait_http() { for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# --- berth ---------------------------------------------------------------------------------
berth_net_cleanup() {
    ip link show "$B_BRIDGE" >/dev/null 2>&1 && ip link delete "$B_BRIDGE"
    nft list table ip "berth_$B_BRIDGE" >/dev/null 2>&1 && nft delete table ip "berth_$B_BRIDGE"
    return 0
}
if ip link show "$B_BRIDGE" >/dev/null 2>&1; then
    log "removing $B_BRIDGE left by an earlier run"; berth_net_cleanup
fi
on_exit berth_net_cleanup                   # runs after stop_berth
start_berth "$WORK/berth-data" "$B_EXEC" --bridge "$B_BRIDGE" --bip "$B_BIP"
"$BERTH" -H "$BH" import "$tar" busybox:latest >/dev/null
"$BERTH" -H "$BH" run -d --name web -p "127.0.0.1:$B_LO:80" -p "$HOSTADDR:$B_HOST:80" \
    -v "$WWW:/www:ro" busybox httpd -f -p 80 -h /www >/dev/null
B_IP=$("$BERTH" -H "$BH" inspect -f '{{.NetworkSettings.IPAddress}}' web)
[ -n "$B_IP" ] || die "berth container has no IP"

# --- docker --------------------------------------------------------------------------------
D_BRIDGE=
if [ "$NO_DOCKER" != 1 ]; then
    for t in filter nat; do iptables -t "$t" -S >"$WORK/ipt-before.$t"; done
    NAT_TABLE_BEFORE=$(nft list table ip nat >/dev/null 2>&1 && echo 1 || echo 0)
    docker_net_cleanup() {
        local t rule c chains
        for t in nat filter; do
            # rules docker added to the built-in chains (jumps to DOCKER*, its bridge, its subnet)
            iptables -t "$t" -S | grep '^-A ' | grep -vE '^-A DOCKER' |
                grep -E "DOCKER|$D_BRIDGE|${D_BIP%.*}\." | while read -r rule; do
                grep -qxF -- "$rule" "$WORK/ipt-before.$t" || eval "iptables -t $t ${rule/-A/-D}"
            done
            chains=$(iptables -t "$t" -S | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}')
            for c in $chains; do grep -qxF -- "-N $c" "$WORK/ipt-before.$t" || iptables -t "$t" -F "$c"; done
            for c in $chains; do grep -qxF -- "-N $c" "$WORK/ipt-before.$t" || iptables -t "$t" -X "$c"; done
        done
        if [ "$NAT_TABLE_BEFORE" = 0 ] && nft list table ip nat >/dev/null 2>&1 &&
            [ "$(iptables -t nat -S | grep -vc '^-P ')" = 0 ]; then
            nft delete table ip nat
        fi
        [ -n "$D_BRIDGE" ] && ip link show "$D_BRIDGE" >/dev/null 2>&1 && ip link delete "$D_BRIDGE"
        return 0
    }
    if ip link show docker0 >/dev/null 2>&1; then
        D_BRIDGE=dbench0
        ip link show "$D_BRIDGE" >/dev/null 2>&1 && ip link delete "$D_BRIDGE"
        on_exit docker_net_cleanup          # runs after stop_dockerd
        ip link add "$D_BRIDGE" type bridge
        ip addr add "$D_BIP" dev "$D_BRIDGE"
        ip link set "$D_BRIDGE" up
        dnet=(--bridge "$D_BRIDGE")
    else
        D_BRIDGE=docker0
        on_exit docker_net_cleanup
        dnet=(--bip "$D_BIP")
    fi
    start_dockerd "$WORK/docker-data" "$D_EXEC" "${dnet[@]}" --ip-forward=false
    "$DOCKER_CLI" -H "$DH" import "$tar" busybox:latest >/dev/null
    "$DOCKER_CLI" -H "$DH" run -d --name web -p "127.0.0.1:$D_LO:80" -p "$HOSTADDR:$D_HOST:80" \
        -v "$WWW:/www:ro" busybox httpd -f -p 80 -h /www >/dev/null
    D_IP=$("$DOCKER_CLI" -H "$DH" inspect -f '{{.NetworkSettings.IPAddress}}' web)
    [ -n "$D_IP" ] || die "docker container has no IP"
fi

# label|engine|host:port
paths=(
    "lo|berth|127.0.0.1:$B_LO"
    "host|berth|$HOSTADDR:$B_HOST"
    "direct|berth|$B_IP:80"
)
[ "$NO_DOCKER" = 1 ] || paths+=(
    "lo|docker|127.0.0.1:$D_LO"
    "host|docker|$HOSTADDR:$D_HOST"
    "direct|docker|$D_IP:80"
)
for p in "${paths[@]}"; do
    wait_http "http://${p##*|}/small.html" || die "no answer from ${p##*|} ($p)"
done

# who listens on the published ports (berth: nobody, the kernel DNATs; docker: docker-proxy)
listeners() { { ss -Hltnp "sport = :$1" | grep -o 'users:(("[^"]*"' || true; } | sed 's/users:(("//; s/"$//' | sort -u | paste -sd, ; }
LISTEN="berth 127.0.0.1:$B_LO: $(listeners $B_LO | sed 's/^$/none (kernel DNAT)/'), $HOSTADDR:$B_HOST: $(listeners $B_HOST | sed 's/^$/none (kernel DNAT)/')"
[ "$NO_DOCKER" = 1 ] || LISTEN="$LISTEN; docker 127.0.0.1:$D_LO: $(listeners $D_LO), $HOSTADDR:$D_HOST: $(listeners $D_HOST)"
PROXY_PIDS=
[ "$NO_DOCKER" = 1 ] || PROXY_PIDS=$(pgrep -x docker-proxy -P "$DOCKERD_PID" || true)
cpu_ms() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $((s * 1000 / $(getconf CLK_TCK))); }

wait_quiet
if build_activity; then
    QUIET="NO: cargo/rustc was running when the measurement started (noisy)"
else
    QUIET="yes (no cargo/rustc running at the start)"
fi

# --- throughput -------------------------------------------------------------------------------
RES=$WORK/results.txt; : >"$RES"
fetch() {   # fetch ADDR -> bytes/s; dies on a short download
    local out
    out=$(curl -fsS -o /dev/null -w '%{size_download} %{speed_download}' "http://$1/big.bin") ||
        die "download from $1 failed"
    [ "${out% *}" = "$BIG_SIZE" ] || die "short download from $1: ${out% *} of $BIG_SIZE bytes"
    echo "${out#* }"
}
log "throughput: 1 warm-up + $N downloads of $BIG_SIZE B per path, interleaved"
for p in "${paths[@]}"; do fetch "${p##*|}" >/dev/null; done
P0=$( [ -n "$PROXY_PIDS" ] && cpu_ms $PROXY_PIDS || echo 0)
for r in $(seq 1 "$N"); do
    for p in "${paths[@]}"; do
        IFS='|' read -r l e a <<<"$p"
        echo "$e $l mbps $(fetch "$a")" >>"$RES"
    done
done
PROXY_CPU=$( [ -n "$PROXY_PIDS" ] && echo $(( $(cpu_ms $PROXY_PIDS) - P0 )) || echo "")

# --- connection rate --------------------------------------------------------------------------
log "connection rate: ab -n $AB_N -c $AB_C, $AB_RUNS runs per path, interleaved"
AB_FAIL=
for r in $(seq 1 "$AB_RUNS"); do
    for p in "${paths[@]}"; do
        IFS='|' read -r l e a <<<"$p"
        out=$(ab -q -n "$AB_N" -c "$AB_C" "http://$a/small.html" 2>&1) || die "ab $a failed: $(echo "$out" | tail -3)"
        rps=$(echo "$out" | awk '/^Requests per second:/ {print $4}')
        done_n=$(echo "$out" | awk '/^Complete requests:/ {print $3}')
        failed=$(echo "$out" | awk '/^Failed requests:/ {print $3}')
        non2xx=$(echo "$out" | awk '/^Non-2xx responses:/ {print $3}')
        [ "$done_n" = "$AB_N" ] && [ "${failed:-0}" = 0 ] && [ -z "$non2xx" ] ||
            AB_FAIL="$AB_FAIL $e/$l run $r: $done_n complete, ${failed:-?} failed, ${non2xx:-0} non-2xx;"
        echo "$e $l rps $rps" >>"$RES"
    done
done
build_activity && QUIET="$QUIET; cargo/rustc running at the end"

# --- report -----------------------------------------------------------------------------------
echo
echo "### Published ports: throughput and connection rate"
echo
echo "$(machine_line). berth: $(berth_build_info)."
[ "$NO_DOCKER" = 1 ] || echo "docker: dockerd $(dockerd --version | awk '{print $3}' | tr -d ,) (Debian docker.io), bridge $D_BRIDGE $D_BIP, iptables on, userland-proxy on (default), --ip-forward=false. berth: bridge $B_BRIDGE $B_BIP."
echo "Quiet machine: $QUIET. Served: busybox httpd in a container, $BIG_SIZE B random file (page-cached) and a $SMALL_SIZE B page from a read-only bind mount. Host address: $HOSTADDR ($HOSTIF)."
echo "Listening on the published ports: $LISTEN.${PROXY_CPU:+ docker-proxy CPU during the $N timed downloads: ${PROXY_CPU} ms.}"
echo "Throughput: curl, 1 warm-up + $N downloads per path, median. Connection rate: \`ab -n $AB_N -c $AB_C\` (one connection per request), median of $AB_RUNS.${AB_FAIL:+ ab errors:$AB_FAIL}"
echo
python3 - "$RES" "$B_LO" "$B_HOST" "$HOSTADDR" "$B_IP" "${D_IP:-}" "$D_LO" "$D_HOST" <<'EOF'
import sys, statistics as st, collections
res, b_lo, b_host, haddr, b_ip, d_ip, d_lo, d_host = sys.argv[1:]
v = collections.defaultdict(list)
for line in open(res):
    e, l, k, x = line.split()
    v[(e, l, k)].append(float(x))
med = lambda e, l, k: st.median(v[(e, l, k)]) if v[(e, l, k)] else None
mb = lambda e, l: None if med(e, l, "mbps") is None else med(e, l, "mbps") / 1e6
def f(x, fmt="{:.0f}"): return "–" if x is None else fmt.format(x)
def pct(e, l):
    a, d = mb(e, l), mb(e, "direct")
    return None if a is None or not d else 100 * a / d
names = {
    "lo": f"published 127.0.0.1 (berth :{b_lo}, docker :{d_lo})",
    "host": f"published {haddr} (berth :{b_host}, docker :{d_host})",
    "direct": f"container IP:80 direct (berth {b_ip}, docker {d_ip or '–'})",
}
print("| path | berth MB/s | berth % of direct | docker MB/s | docker % of direct | berth req/s | docker req/s |")
print("|---|---:|---:|---:|---:|---:|---:|")
for l in ("lo", "host", "direct"):
    print(f"| {names[l]} | {f(mb('berth', l))} | {f(pct('berth', l))} | {f(mb('docker', l))} | "
          f"{f(pct('docker', l))} | {f(med('berth', l, 'rps'))} | {f(med('docker', l, 'rps'))} |")
print()
print("Every run (MB/s; req/s):")
for e in ("berth", "docker"):
    for l in ("lo", "host", "direct"):
        if v[(e, l, "mbps")]:
            print(f"- {e} {l}: " + " ".join(f"{x / 1e6:.0f}" for x in v[(e, l, "mbps")]) +
                  "; " + " ".join(f"{x:.0f}" for x in v[(e, l, "rps")]))
print()
ok = lambda c: "**met**" if c else "**missed**"
for l in ("lo", "host"):
    p = pct("berth", l)
    if p is not None:
        print(f"- berth {names[l].split(' (')[0]}: {p:.0f}% of direct, target ≥ 90%: {ok(p >= 90)}")
if mb("docker", "lo") is not None:
    for l in ("lo", "host"):
        print(f"- berth vs docker, {names[l].split(' (')[0]}: {mb('berth', l) / mb('docker', l):.2f}× the MB/s, "
              f"{med('berth', l, 'rps') / med('docker', l, 'rps'):.2f}× the req/s")
    print(f"- ahead of docker's userland proxy (127.0.0.1): throughput {ok(mb('berth', 'lo') > mb('docker', 'lo'))}, "
          f"connection rate {ok(med('berth', 'lo', 'rps') > med('docker', 'lo', 'rps'))}")
EOF
