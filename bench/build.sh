#!/bin/bash
# Image build: berth's builder against docker's legacy builder, docker's BuildKit and
# buildah, on the same 10-step Dockerfile over the same busybox image.
#
# Usage: bench/build.sh                    (as root)
#   BERTH_PREBUILT=1 [BERTH=/path/berth]   skip `cargo build --release -p berth`
#   RUNS=10                                hyperfine runs per measurement (warm-up 1)
#   NO_PEERS=1                             berth only
#   WAIT_QUIET=SECONDS                     wait for other people's cargo/rustc to finish
#
# Measured for each builder (hyperfine, medians):
#   cold      `build --no-cache` of the 10-step file (base image present, every step runs);
#   no-change a rebuild with nothing changed (every step a cache hit);
#   one-file  a rebuild after the second COPY'd file changed (hyperfine --prepare writes new
#             content): that COPY and the 4 steps after it run again;
#   per-RUN   (cold build of FROM + 10 x `RUN true`  -  cold build of FROM + 1 LABEL) / 10,
#             next to berth's own `run --rm --network none busybox true`.
# and for `FROM busybox` + `COPY . /ctx` of a 10,000-file context (100 directories of 100
# files of 20-120 bytes, two levels deep, plus a .dockerignore that drops 100 more):
#   cold, no-change rebuild, and the rebuild after one file changed.
# Every build uses `--network none` (dockerd runs with --bridge none here, and the builders
# then do the same work). Each engine has its own roots: berth daemon (data-root under
# $WORK, exec-root /run/bbb), dockerd 20.10 with its own containerd (exec-root /run/bbd;
# DOCKER_BUILDKIT=0 and =1 with Debian's 20.10 CLI), buildah (--root/--runroot under
# $WORK, `bud --layers` so that it caches, OCI isolation with runc: crun 1.8 refuses this hybrid cgroup setup). All are stopped and removed on exit.
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-10}
WORK=${WORK:-/var/tmp/berth-bench-build}
NO_PEERS=${NO_PEERS:-0}

mkdir -p "$WORK"
exec 9>"$WORK.lock"
flock -n 9 || die "another build.sh is running (lock $WORK.lock)"
scrub "$WORK"; mkdir -p "$WORK"
on_exit "scrub '$WORK'"

pkgs=(hyperfine:hyperfine busybox:busybox-static python3:python3)
[ "$NO_PEERS" = 1 ] || pkgs+=(dockerd:docker.io buildah:buildah)
ensure_pkgs "${pkgs[@]}"
build_berth
tar=$(busybox_tar)

# --- the contexts ----------------------------------------------------------------------------
CTX=$WORK/ctx10
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<'EOF'
FROM busybox
ENV APP=/app
WORKDIR /app
COPY a.txt ./
RUN echo one > /one
COPY b.txt ./
RUN cat a.txt b.txt > ab.txt
LABEL bench=build
RUN echo three > /three
CMD ["cat", "/app/ab.txt"]
EOF
echo "file a" >"$CTX/a.txt"
echo "file b" >"$CTX/b.txt"
R10=$WORK/run10 R0=$WORK/run0
mkdir -p "$R10" "$R0"
{ echo "FROM busybox"; for _ in $(seq 10); do echo "RUN true"; done; } >"$R10/Dockerfile"
printf 'FROM busybox\nLABEL bench=none\n' >"$R0/Dockerfile"
C10K=$WORK/ctx10k
python3 - "$C10K" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    sub = os.path.join(root, f"d{d // 10}", f"e{d % 10}")
    os.makedirs(sub, exist_ok=True)
    for f in range(100):
        with open(os.path.join(sub, f"f{f:03}.txt"), "w") as fh:
            fh.write(f"file {d}/{f} " + "x" * (d + f % 20))
os.makedirs(os.path.join(root, "ignored"))
for f in range(100):
    open(os.path.join(root, "ignored", f"junk{f}"), "w").write("junk")
open(os.path.join(root, ".dockerignore"), "w").write("ignored\n")
open(os.path.join(root, "Dockerfile"), "w").write("FROM busybox\nCOPY . /ctx\n")
PY

# --- engines ---------------------------------------------------------------------------------
# The daemon keeps its bridge when it stops; removed after it (cleanups run in reverse).
on_exit "ip link del bbb0 2>/dev/null || true; nft delete table ip berth_bbb0 2>/dev/null || true"
start_berth "$WORK/berth-data" /run/bbb --bridge bbb0 --bip 10.254.77.1/24
"$BERTH" -H "$BH" import "$tar" busybox:latest >/dev/null
builders=(berth)
declare -A B CACHED
B[berth]="$BERTH -H $BH build --network none"
CACHED[berth]="Using cache"
if [ "$NO_PEERS" != 1 ]; then
    start_dockerd "$WORK/docker-data" /run/bbd
    "$DOCKER_CLI" -H "$DH" import "$tar" busybox:latest >/dev/null
    B[docker-legacy]="env DOCKER_BUILDKIT=0 $DOCKER_CLI -H $DH build --network none"
    CACHED[docker-legacy]="Using cache"
    B[docker-buildkit]="env DOCKER_BUILDKIT=1 $DOCKER_CLI -H $DH build --progress plain --network none"
    CACHED[docker-buildkit]="CACHED"
    BUILDAH="buildah --root $WORK/buildah-root --runroot /run/bbh --storage-driver overlay"
    scrub /run/bbh
    on_exit "$BUILDAH rm -a >/dev/null 2>&1; $BUILDAH rmi -af >/dev/null 2>&1; scrub /run/bbh"
    $BUILDAH from --name bb-import scratch >/dev/null
    mnt=$($BUILDAH mount bb-import)
    tar -xf "$tar" -C "$mnt"
    $BUILDAH umount bb-import >/dev/null
    $BUILDAH commit -q bb-import busybox:latest >/dev/null
    $BUILDAH rm bb-import >/dev/null
    B[buildah]="$BUILDAH bud --layers --network none --runtime runc"
    CACHED[buildah]="Using cache"
    builders+=(docker-legacy docker-buildkit buildah)
fi

# Each builder must build the file and, on a rebuild, hit the cache on all 9 steps.
for b in "${builders[@]}"; do
    log "trial: $b"
    ${B[$b]} -t bench10 "$CTX" >"$WORK/$b.trial" 2>&1 || { cat "$WORK/$b.trial" >&2; die "$b cannot build"; }
    ${B[$b]} -t bench10 "$CTX" >"$WORK/$b.trial2" 2>&1
    hits=$(grep -c "${CACHED[$b]}" "$WORK/$b.trial2" || true)
    log "$b: $hits cache-hit lines on a no-change rebuild"
    echo "$hits" >"$WORK/$b.hits"
done

wait_quiet
if build_activity; then
    QUIET="NO: cargo/rustc was running when the measurement started (noisy)"
else
    QUIET="yes (no cargo/rustc running at the start)"
fi

run_count() { # run_count BUILDER: files under /ctx of its bench10k image ("... ignored" if .dockerignore failed)
    local cmd='find /ctx -name "f*.txt" | wc -l; [ ! -e /ctx/ignored ] || echo ignored'
    case $1 in
    berth) $BERTH -H "$BH" run --rm --network none bench10k sh -c "$cmd" ;;
    docker-*) "$DOCKER_CLI" -H "$DH" run --rm --network none bench10k sh -c "$cmd" ;;
    buildah)
        local c m
        c=$($BUILDAH from -q bench10k)
        m=$($BUILDAH mount "$c")
        (cd "$m" && sh -c "${cmd//\/ctx/ctx}")
        $BUILDAH umount "$c" >/dev/null
        $BUILDAH rm "$c" >/dev/null
        ;;
    esac 2>&1 | tr '\n' ' ' | xargs
}
hf() { # hf NAME [hyperfine args...]
    local name=$1
    shift
    hyperfine -N --warmup 1 --runs "$RUNS" --style basic --export-json "$WORK/$name.json" "$@" >&2 </dev/null
}
for b in "${builders[@]}"; do
    log "== $b"
    hf "$b-cold" -n "$b cold" "${B[$b]} --no-cache -t bench10 $CTX"
    ${B[$b]} -t bench10 "$CTX" >/dev/null 2>&1
    hf "$b-nochange" -n "$b no-change" "${B[$b]} -t bench10 $CTX"
    hf "$b-onefile" -n "$b one-file" --prepare "sh -c 'date +%s%N >$CTX/b.txt'" "${B[$b]} -t bench10 $CTX"
    hf "$b-run10" -n "$b 10 RUN" "${B[$b]} --no-cache -t benchr10 $R10"
    hf "$b-run0" -n "$b 0 RUN" "${B[$b]} --no-cache -t benchr0 $R0"
    hf "$b-c10k-cold" -n "$b 10k cold" "${B[$b]} --no-cache -t bench10k $C10K"
    ${B[$b]} -t bench10k "$C10K" >/dev/null 2>&1
    hf "$b-c10k-nochange" -n "$b 10k no-change" "${B[$b]} -t bench10k $C10K"
    hf "$b-c10k-onefile" -n "$b 10k one-file" --prepare "sh -c 'date +%s%N >$C10K/d4/e2/f042.txt'" "${B[$b]} -t bench10k $C10K"
    # Every builder must have copied all 10,000 files (and not the ignored ones).
    n=$(run_count "$b")
    [ "$n" = 10000 ] || die "$b: /ctx holds $n files, not 10000"
done
:
hf berth-run -n "berth run" "$BERTH -H $BH run --rm --network none busybox true"
build_activity && QUIET="$QUIET; cargo/rustc running at the end"

echo
echo "### Build: 10-step Dockerfile on busybox"
echo
echo "$(machine_line). $(berth_build_info)."
[ "$NO_PEERS" = 1 ] || echo "Versions: dockerd $(dockerd --version | awk '{print $3}' | tr -d ,), CLI $("$DOCKER_CLI" --version | awk '{print $3}' | tr -d ,), $(buildah --version | awk '{print $1, $3}'), hyperfine $(hyperfine --version | awk '{print $2}')."
echo "Quiet machine: $QUIET. hyperfine -N --warmup 1 --runs $RUNS, medians in ms."
echo
python3 - "$WORK" "${builders[@]}" <<'EOF'
import json, statistics, sys
work, builders = sys.argv[1], sys.argv[2:]
def med(name):
    return statistics.median(json.load(open(f"{work}/{name}.json"))["results"][0]["times"]) * 1e3
rows = {b: dict(cold=med(f"{b}-cold"), nochange=med(f"{b}-nochange"), onefile=med(f"{b}-onefile"),
               step=(med(f"{b}-run10") - med(f"{b}-run0")) / 10,
               hits=open(f"{work}/{b}.hits").read().strip()) for b in builders}
run = med("berth-run")
print("| builder | cold | no-change rebuild | one file changed | per RUN step | cache hits on rebuild |")
print("|---|---:|---:|---:|---:|---:|")
for b, r in rows.items():
    print(f"| {b} | {r['cold']:.0f} | {r['nochange']:.0f} | {r['onefile']:.0f} | {r['step']:.0f} | {r['hits']} |")
print(f"| `berth run --rm --network none busybox true` | | | | {run:.0f} | |")
print()
b = rows["berth"]
peers = {k: v for k, v in rows.items() if k != "berth"}
if peers:
    fastest = min(peers, key=lambda k: peers[k]["nochange"])
    print(f"- no-change rebuild: berth {b['nochange']:.0f} ms vs fastest peer {fastest} {peers[fastest]['nochange']:.0f} ms "
          f"(ratio {b['nochange'] / peers[fastest]['nochange']:.2f}; target <= 1)")
    if "docker-buildkit" in peers:
        print(f"- cold: berth / BuildKit = {b['cold'] / peers['docker-buildkit']['cold']:.2f} (target <= 0.5)")
print(f"- per RUN step: berth {b['step']:.0f} ms / berth run {run:.0f} ms = {b['step'] / run:.2f} (target <= 1.5)")
print()
print("COPY of a 10,000-file context (`FROM busybox` + `COPY . /ctx`), medians in ms:")
print()
print("| builder | cold | no-change rebuild | one file changed |")
print("|---|---:|---:|---:|")
for b in builders:
    print(f"| {b} | {med(f'{b}-c10k-cold'):.0f} | {med(f'{b}-c10k-nochange'):.0f} | {med(f'{b}-c10k-onefile'):.0f} |")
EOF
