#!/bin/bash
# Registry push and pull over loopback: berth client + `berth registry serve` against skopeo +
# Debian's docker-registry (distribution 2.8), for a 512 MiB single-layer image and a 50-layer
# image. Reports wall time, MB/s and the HTTP requests each registry served per operation.
#
# Usage: bench/registry.sh               (as root)
#   BERTH_PREBUILT=1 [BERTH=/path/berth] skip `cargo build --release -p berth`
#   RUNS=3                               timed runs per variant (median reported)
#   LAYERS=50                            layers (1 MiB of /dev/urandom each) of the many-layer image
#   BIG_TAR=/var/cache/berth-test/large-rootfs-512m.tar   rootfs tar of the single-layer image
#   BB_TAR=/var/cache/berth-test/busybox-rootfs.tar       busybox rootfs (base of the 50-layer image)
#   TMPFS_SIZE=8g                        size of the tmpfs mounted on $WORK (0: no tmpfs, use the disk)
#   WAIT_QUIET=SECONDS                   wait up to that long for cargo/rustc (other people's
#                                        builds) to finish before measuring
#
# Setup:
#   - berth daemon (data-root under $WORK, exec-root /run/bbrg, --bridge bbreg0 --bip
#     10.250.0.1/24). Images: bench/big:1 = `berth import BIG_TAR` (one layer);
#     bench/layers:1 = busybox rootfs + LAYERS layers of one 1 MiB /dev/urandom file each, written
#     as a docker-archive by this script and `berth load`ed.
#     Each image is saved once (`berth save`, docker-archive) and converted once by skopeo to an
#     oci: layout with gzip'd layers (untimed).
#   - berth registry: `berth registry serve --addr 127.0.0.1:18500 --root DIR` (auth none),
#     access log (target berth_registry::access, one line per request) at RUST_LOG=info.
#   - docker-registry: /usr/bin/docker-registry serve CONFIG on 127.0.0.1:18501, filesystem
#     storage, plain HTTP, no auth; its access log (combined format, one line per request).
# Measured (wall time, `date +%s.%N` around the command; median of RUNS):
#   - push: a fresh registry (storage wiped, restarted) before every run, so every blob is
#     uploaded. berth: `berth push 127.0.0.1:18500/bench/IMG:1` from the daemon, cold (the
#     image removed and loaded again first, so no layer was compressed before: berth gzips
#     while uploading) and warm (pushed again to a fresh registry: the gzip'd layers kept by
#     the cold push are uploaded as they are). Peer: skopeo
#     copy to docker://127.0.0.1:18501/bench/IMG:1 --dest-tls-verify=false, from
#       (a) the oci: layout with gzip'd layers (pure transfer), and
#       (b) the docker-archive from `berth save` (uncompressed layers: skopeo gzips while pushing).
#   - pull: registries populated once (untimed); berth pulls into a fresh daemon (new data-root,
#     started before the timer) every run: download + verify + unpack into its snapshots. skopeo
#     copies docker://… to a fresh oci: dir every run: download + verify only, no unpacking.
#   - MB/s = the image's uncompressed layer bytes (sum of the layer tars in the docker-archive,
#     the same number for every tool) / 1e6 / seconds; the ratio is berth MB/s / peer MB/s.
#   - requests: access-log lines of the registry during one run (median over the runs).
# docker's client is not measured here: this needs a dockerd of its own; see
# /work/shared/peers/RESULTS.md "M4" for docker push/pull against the same docker-registry.
#
# Changes made to the machine and undone on exit (trap): the tmpfs on $WORK, the berth daemons, both registries
# (stopped by pid), the bridge bbreg0 and nft table berth_bbreg0, all roots under $WORK and
# /run/bbrg. Traffic goes only to 127.0.0.1.
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-3}
LAYERS=${LAYERS:-50}
BIG_TAR=${BIG_TAR:-/var/cache/berth-test/large-rootfs-512m.tar}
BB_TAR=${BB_TAR:-/var/cache/berth-test/busybox-rootfs.tar}
WORK=${WORK:-/var/tmp/berth-bench-registry}
BRIDGE=bbreg0 BIP=10.250.0.1/24 EXEC=/run/bbrg
B_PORT=18500 P_PORT=18501
B_REG=127.0.0.1:$B_PORT P_REG=127.0.0.1:$P_PORT

leftover_check() {
    local left=
    ip link show "$BRIDGE" >/dev/null 2>&1 && left="$left link $BRIDGE;"
    nft list table ip "berth_$BRIDGE" >/dev/null 2>&1 && left="$left nft table berth_$BRIDGE;"
    [ -e "$WORK" ] && left="$left $WORK;"
    [ -e "$EXEC" ] && left="$left $EXEC;"
    for p in ${B_REG_PID:-} ${P_REG_PID:-}; do kill -0 "$p" 2>/dev/null && left="$left registry pid $p;"; done
    if [ -n "$left" ]; then log "WARNING: left over after cleanup:$left"; else log "cleanup verified: no daemon, registry, bridge, nft table or root left"; fi
}
on_exit leftover_check

mkdir -p "$WORK"
exec 9>"$WORK.lock"
flock -n 9 || die "another registry.sh is running (lock $WORK.lock)"
scrub "$WORK"; mkdir -p "$WORK"
on_exit "scrub '$WORK'"
# WORK on a tmpfs of its own (default): the 512 MiB image lives in up to six places at once,
# and the disk here is shared with CI builds (ENOSPC mid-run otherwise). It also takes disk
# speed out of what is a loopback transfer benchmark. TMPFS_SIZE=0: use the disk.
TMPFS_SIZE=${TMPFS_SIZE:-8g}
[ "$TMPFS_SIZE" = 0 ] || mount -t tmpfs -o "size=$TMPFS_SIZE,mode=0755" bench-registry "$WORK"

ensure_pkgs skopeo:skopeo docker-registry:docker-registry python3:python3 curl:curl nft:nftables
build_berth
[ -s "$BIG_TAR" ] || die "$BIG_TAR not found"
[ -s "$BB_TAR" ] || BB_TAR=$(busybox_tar)
free=$(df -Pk "$WORK" | awk 'NR == 2 {print $4}')
[ "$free" -ge $((4 * 1048576)) ] || log "WARNING: only $((free / 1024)) MiB free under $WORK; about 4 GiB are needed"
for p in $B_PORT $P_PORT; do
    if ss -Hltn "sport = :$p" | grep -q .; then die "port $p is in use"; fi
done

# --- network cleanup (runs after stop_berth) -------------------------------------------------
net_cleanup() {
    ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
    nft list table ip "berth_$BRIDGE" >/dev/null 2>&1 && nft delete table ip "berth_$BRIDGE"
    return 0
}
if ip link show "$BRIDGE" >/dev/null 2>&1; then log "removing $BRIDGE left by an earlier run"; net_cleanup; fi
on_exit net_cleanup

# --- registries --------------------------------------------------------------------------------
wait_v2() { for _ in $(seq 1 200); do curl -fsS -o /dev/null "http://$1/v2/" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
stop_pid() {   # stop_pid PID: TERM, wait, KILL
    local p=$1
    [ -n "$p" ] || return 0
    kill -TERM "$p" 2>/dev/null || return 0
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}
B_REG_PID= P_REG_PID=
on_exit 'stop_pid "$B_REG_PID"; stop_pid "$P_REG_PID"'
# Logs are appended to one file per registry; request counts are taken as line-count deltas.
B_LOG=$WORK/berth-registry.log P_LOG=$WORK/docker-registry.log
: >"$B_LOG"; : >"$P_LOG"
b_reg_reset() {
    stop_pid "$B_REG_PID"; B_REG_PID=
    rm -rf "$WORK/breg"; mkdir -p "$WORK/breg"
    NO_COLOR=1 RUST_LOG=info "$BERTH" registry serve --addr "$B_REG" --root "$WORK/breg" \
        >>"$B_LOG" 2>&1 </dev/null &
    B_REG_PID=$!
    wait_v2 "$B_REG" || { tail -5 "$B_LOG" >&2; die "berth registry did not start"; }
}
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/preg
  delete:
    enabled: true
http:
  addr: $P_REG
EOF
p_reg_reset() {
    stop_pid "$P_REG_PID"; P_REG_PID=
    rm -rf "$WORK/preg"; mkdir -p "$WORK/preg"
    docker-registry serve "$WORK/registry.yml" >>"$P_LOG" 2>&1 </dev/null &
    P_REG_PID=$!
    wait_v2 "$P_REG" || { tail -5 "$P_LOG" >&2; die "docker-registry did not start"; }
}
# request lines: berth's access target; distribution's combined-format access log
b_reqs() { sed 's/\x1b\[[0-9;]*m//g' "$B_LOG" | grep -c 'berth_registry::access' || true; }
p_reqs() { grep -cE '"(GET|HEAD|POST|PUT|PATCH|DELETE) /v2/' "$P_LOG" || true; }

# --- images --------------------------------------------------------------------------------
start_berth "$WORK/src-data" "$EXEC" --bridge "$BRIDGE" --bip "$BIP"
log "importing $BIG_TAR as bench/big:1"
"$BERTH" -H "$BH" import "$BIG_TAR" bench/big:1 >/dev/null
"$BERTH" -H "$BH" import "$BB_TAR" busybox:latest >/dev/null
# The many-layer image is written as a docker-archive and loaded: `berth build` (FROM busybox +
# RUN steps) stops at 32 layers, the most one overlay mount of its runtime takes.
log "writing bench/layers:1 (busybox + $LAYERS layers of 1 MiB random) and loading it"
python3 - "$BB_TAR" "$LAYERS" "$WORK/layers.src.tar" <<'EOF'
import hashlib, io, json, os, sys, tarfile
bb, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
layers = [open(bb, "rb").read()]
for i in range(1, n + 1):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        ti = tarfile.TarInfo(f"f{i}"); ti.size = 1 << 20; ti.mtime = 0; ti.mode = 0o644
        t.addfile(ti, io.BytesIO(os.urandom(1 << 20)))
    layers.append(b.getvalue())
ids = [hashlib.sha256(l).hexdigest() for l in layers]
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + i for i in ids]},
    "history": [{"created_by": "busybox rootfs"}] +
               [{"created_by": f"RUN head -c 1M /dev/urandom >/f{i}"} for i in range(1, n + 1)]}).encode()
cid = hashlib.sha256(cfg).hexdigest()
with tarfile.open(out, "w") as t:
    def add(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o644
        t.addfile(ti, io.BytesIO(data))
    for i, l in zip(ids, layers):
        add(f"{i}/layer.tar", l)
    add(f"{cid}.json", cfg)
    add("manifest.json", json.dumps([{"Config": f"{cid}.json", "RepoTags": ["bench/layers:1"],
                                      "Layers": [f"{i}/layer.tar" for i in ids]}]).encode())
EOF
"$BERTH" -H "$BH" load -q -i "$WORK/layers.src.tar" >/dev/null || die "berth load of the $LAYERS-layer image failed"
rm -f "$WORK/layers.src.tar"
IMAGES=(big layers)
declare -A PAYLOAD NLAYERS
for img in "${IMAGES[@]}"; do
    "$BERTH" -H "$BH" tag "bench/$img:1" "$B_REG/bench/$img:1"
    "$BERTH" -H "$BH" save -o "$WORK/$img.docker.tar" "bench/$img:1"
    # uncompressed layer bytes, from the docker-archive's manifest.json
    read -r "PAYLOAD[$img]" "NLAYERS[$img]" < <(python3 - "$WORK/$img.docker.tar" <<'EOF'
import json, sys, tarfile
t = tarfile.open(sys.argv[1])
m = json.load(t.extractfile("manifest.json"))[0]
print(sum(t.getmember(l).size for l in m["Layers"]), len(m["Layers"]))
EOF
)
    log "bench/$img:1: ${NLAYERS[$img]} layers, ${PAYLOAD[$img]} B uncompressed; skopeo -> oci: (gzip)"
    skopeo copy -q "docker-archive:$WORK/$img.docker.tar" "oci:$WORK/$img.oci:img" >&2
done

wait_quiet
if build_activity; then
    QUIET="NO: cargo/rustc was running when the measurement started (noisy)"
else
    QUIET="yes (no cargo/rustc running at the start)"
fi

RES=$WORK/results.txt; : >"$RES"
now() { date +%s.%N; }
# timed LABEL REQFN CMD...: run CMD, append "LABEL seconds requests" to $RES
timed() {
    local label=$1 reqfn=$2 r0 t0 t1 r1
    shift 2
    r0=$($reqfn); t0=$(now)
    "$@" >"$WORK/cmd.out" 2>&1 </dev/null || { cat "$WORK/cmd.out" >&2; die "$label failed: $*"; }
    t1=$(now)
    sleep 0.3   # let the registry flush its last access-log line
    r1=$($reqfn)
    t1=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')
    echo "$label $t1 $((r1 - r0))" >>"$RES"
    log "$label: $t1 s, $((r1 - r0)) requests"
}

# --- push ----------------------------------------------------------------------------------
for r in $(seq 1 "$RUNS"); do
    for img in "${IMAGES[@]}"; do
        # Cold: berth keeps the gzip'd form of a layer it pushed, so the push cache is emptied
        # first by removing the image and loading it again from its docker-archive (same ID;
        # untimed). The push then compresses every layer while it uploads.
        "$BERTH" -H "$BH" rmi -f "bench/$img:1" "$B_REG/bench/$img:1" >/dev/null
        [ -z "$("$BERTH" -H "$BH" images -q "bench/$img:1")" ] || die "bench/$img:1 is still there"
        "$BERTH" -H "$BH" load -q -i "$WORK/$img.docker.tar" >/dev/null
        "$BERTH" -H "$BH" tag "bench/$img:1" "$B_REG/bench/$img:1"
        b_reg_reset
        timed "$img push berth" b_reqs "$BERTH" -H "$BH" push "$B_REG/bench/$img:1"
        # Warm: the same image again to a fresh registry; the kept gzip'd layers are uploaded
        # as they are (what a push to a second registry, or a re-push, costs).
        b_reg_reset
        timed "$img push berth-warm" b_reqs "$BERTH" -H "$BH" push "$B_REG/bench/$img:1"
        p_reg_reset
        timed "$img push peer-oci" p_reqs skopeo copy -q --dest-tls-verify=false \
            "oci:$WORK/$img.oci:img" "docker://$P_REG/bench/$img:1"
        p_reg_reset
        timed "$img push peer-archive" p_reqs skopeo copy -q --dest-tls-verify=false \
            "docker-archive:$WORK/$img.docker.tar" "docker://$P_REG/bench/$img:1"
    done
done
# --- pull ------------------------------------------------------------------------------------
# Disk is the limit here (a 512 MiB image lives in up to six places), so one registry holds
# data at a time, and the sources go as soon as they are no longer needed.
# Peer first: docker-registry populated from the oci: layouts, then the sources are removed.
p_reg_reset
for img in "${IMAGES[@]}"; do
    skopeo copy -q --dest-tls-verify=false "oci:$WORK/$img.oci:img" "docker://$P_REG/bench/$img:1" >&2
done
PSTORE=$(du -sb "$WORK/preg/docker/registry/v2/blobs" | cut -f1)
rm -rf "$WORK"/*.oci "$WORK"/*.docker.tar
for r in $(seq 1 "$RUNS"); do
    for img in "${IMAGES[@]}"; do
        rm -rf "$WORK/pull.oci"
        timed "$img pull peer" p_reqs skopeo copy -q --src-tls-verify=false \
            "docker://$P_REG/bench/$img:1" "oci:$WORK/pull.oci:img"
        rm -rf "$WORK/pull.oci"
    done
done
stop_pid "$P_REG_PID"; P_REG_PID=; rm -rf "$WORK/preg"
# berth: its registry populated by the source daemon, which is then removed; every pull goes
# into a fresh daemon.
b_reg_reset
for img in "${IMAGES[@]}"; do "$BERTH" -H "$BH" push "$B_REG/bench/$img:1" >/dev/null; done
BSTORE=$(du -sb "$WORK/breg/blobs" | cut -f1)
stop_berth "$WORK/src-data" "$EXEC"
for r in $(seq 1 "$RUNS"); do
    for img in "${IMAGES[@]}"; do
        start_berth "$WORK/dst-data" "$EXEC" --bridge "$BRIDGE" --bip "$BIP"
        timed "$img pull berth" b_reqs "$BERTH" -H "$BH" pull "$B_REG/bench/$img:1"
        n=$("$BERTH" -H "$BH" images -q "$B_REG/bench/$img:1" | wc -l)
        [ "$n" = 1 ] || die "berth pull of bench/$img:1 left $n images"
        stop_berth "$WORK/dst-data" "$EXEC"
    done
done
build_activity && QUIET="$QUIET; cargo/rustc running at the end"

# --- report ----------------------------------------------------------------------------------
echo
echo "### Registry push and pull over loopback"
echo
echo "$(machine_line). berth: $(berth_build_info)."
echo "Peers: skopeo $(skopeo --version | awk '{print $3}'), docker-registry $(docker-registry --version | awk '{print $3}') (Debian). Quiet machine: $QUIET. Median of $RUNS runs each."
echo "Payload (uncompressed layer bytes): big ${NLAYERS[big]} layer(s), ${PAYLOAD[big]} B; layers ${NLAYERS[layers]} layers, ${PAYLOAD[layers]} B. Blobs stored after pushing both images: berth registry $BSTORE B, docker-registry $PSTORE B."
echo
python3 - "$RES" "${PAYLOAD[big]}" "${PAYLOAD[layers]}" "$LAYERS" <<'EOF'
import sys, statistics as st, collections
res, pb, pl, nl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
payload = {"big": pb, "layers": pl}
names = {"big": "512 MiB, 1 layer", "layers": f"busybox + {nl} × 1 MiB layers"}
t, q = collections.defaultdict(list), collections.defaultdict(list)
for line in open(res):
    img, op, who, s, n = line.split()
    t[(img, op, who)].append(float(s)); q[(img, op, who)].append(int(n))
rows = [("push", "berth", "peer-archive", "push, cold (berth: compresses while pushing; peer: skopeo from docker-archive, gzips while pushing)"),
        ("push", "berth", "peer-oci", "push, cold (berth: compresses while pushing; peer: skopeo from oci:, layers already gzip'd)"),
        ("push", "berth-warm", "peer-oci", "push, warm (berth: gzip'd layers kept from an earlier push; peer: skopeo from oci:, layers already gzip'd)"),
        ("pull", "berth", "peer", "pull (berth: into a daemon, unpacked; peer: skopeo to oci: dir)")]
print("| image | op | berth s | berth MB/s | peer s | peer MB/s | ratio | berth requests | peer requests |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for img in ("big", "layers"):
    for op, who, peer, label in rows:
        b, p = t[(img, op, who)], t[(img, op, peer)]
        if not b or not p:
            continue
        bs, ps = st.median(b), st.median(p)
        bm, pm = payload[img] / 1e6 / bs, payload[img] / 1e6 / ps
        print(f"| {names[img]} | {label} | {bs:.2f} | {bm:.0f} | {ps:.2f} | {pm:.0f} | {bm / pm:.2f}× | "
              f"{st.median(q[(img, op, who)]):.0f} | {st.median(q[(img, op, peer)]):.0f} |")
print()
print("Every run (s):")
for k in sorted(t):
    print(f"- {' '.join(k)}: " + " ".join(f"{x:.2f}" for x in t[k]) + "; requests " + " ".join(map(str, q[k])))
print()
for img in ("big", "layers"):
    for op, who, peer, label in rows:
        b, p = t[(img, op, who)], t[(img, op, peer)]
        if b and p:
            r = st.median(p) / st.median(b)
            print(f"- {names[img]}, {op} {who} vs {peer}: {r:.2f}× the peer's throughput, target ≥ 1.5×: "
                  f"{'**met**' if r >= 1.5 else '**missed**'}")
EOF
