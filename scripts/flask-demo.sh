#!/bin/bash
# The main job, end to end on a fresh clone (as root): install what is
# missing, build berth, make the python:3 base image from Debian packages if
# the engine lacks it, build examples/flask, run it as the seed's notes do
# (detached here, so the check can be scripted), show that
# http://localhost:5001/ answers "Hello, World!", then stop it — `--rm`
# removes the container, its write layer, veth and port forward.
#
# Usage: sudo scripts/flask-demo.sh
#   BERTH=/path/to/berth   use this binary instead of building one
#   PORT=5001              host port to publish
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-5001}
step() { echo; echo "==> $*"; }
[ "$(id -u)" = 0 ] || { echo "error: run as root" >&2; exit 1; }

pkgs=()
for p in cc:build-essential pkg-config:pkg-config nft:nftables ip:iproute2 debootstrap:debootstrap \
         curl:curl tini-static:tini; do
    command -v "${p%%:*}" >/dev/null 2>&1 || pkgs+=("${p#*:}")
done
dpkg -s libseccomp-dev >/dev/null 2>&1 || pkgs+=(libseccomp-dev)
if [ ${#pkgs[@]} -gt 0 ]; then
    step "apt-get install ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi

if [ -z "${BERTH:-}" ]; then
    command -v cargo >/dev/null || { echo "error: cargo not found: install a Rust toolchain (rustup, stable)" >&2; exit 1; }
    step "cargo build --release -p berth"
    cargo build --release -p berth
    BERTH=$PWD/target/release/berth
fi
export BERTH

step "berth version (starts the engine in the background if none answers)"
"$BERTH" version --format 'client {{.Client.Version}}, engine {{.Server.Version}}'

step "base image python:3 (Debian packages, cached)"
scripts/make-python-image.sh

step "berth build -t flask-hello examples/flask"
t0=$(date +%s.%N)
"$BERTH" build -t flask-hello examples/flask

step "berth run --rm -d -p 0.0.0.0:$PORT:5000 flask-hello"
"$BERTH" rm -f flask-hello-demo >/dev/null 2>&1 || true
"$BERTH" run --rm -d --name flask-hello-demo -p "0.0.0.0:$PORT:5000" flask-hello
answer=
for _ in $(seq 1 100); do
    answer=$(curl -fsS "http://localhost:$PORT/" 2>/dev/null) && break
    sleep 0.1
done
t1=$(date +%s.%N)

step "curl http://localhost:$PORT/"
echo "$answer"
size=$("$BERTH" image inspect -f '{{.Size}}' flask-hello)
echo "build + start + first answer: $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f s", b - a}'); image size $((size / 1000000)) MB"

step "berth stop flask-hello-demo (--rm removes it)"
"$BERTH" stop flask-hello-demo >/dev/null
for _ in $(seq 1 50); do
    "$BERTH" ps -a -q --filter name=flask-hello-demo | grep -q . || break
    sleep 0.1
done
left=$("$BERTH" ps -a -q --filter name=flask-hello-demo)
[ -z "$left" ] || { echo "error: container still there: $left" >&2; exit 1; }
echo "removed"
[ "$answer" = "Hello, World!" ] || { echo "error: unexpected answer: $answer" >&2; exit 1; }
