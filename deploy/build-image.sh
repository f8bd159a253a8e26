#!/usr/bin/env bash
# Builds the raftcart container image without any registry: FROM scratch,
# with the release binary and exactly the shared libraries it loads (as
# ldd lists them), nothing else.
#
#   deploy/build-image.sh [TAG]        (default raftcart:latest)
#
# RAFTCART_BIN picks a prebuilt binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-raftcart:latest}
. scripts/prereqs.sh
if [ -z "${RAFTCART_BIN:-}" ]; then
    cargo build --release --bin raftcart
    RAFTCART_BIN="$CARGO_TARGET_DIR/release/raftcart"
fi

root=$(mktemp -d /tmp/raftcart-image.XXXXXX)
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$RAFTCART_BIN" "$root/raftcart"
# Debug info is for profiling on the build machine, not for the image.
strip "$root/raftcart"
# Every library the dynamic loader will map, and the loader itself, at the
# paths the binary names.
for lib in $(ldd "$RAFTCART_BIN" | grep -o '/[^ ]*'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
done
mkdir -p "$root/data" "$root/tmp"
cp deploy/Dockerfile "$root/Dockerfile"
printf "Dockerfile\n.dockerignore\n" > "$root/.dockerignore"
# Quiet unless it fails (the legacy builder also warns about buildx here).
if ! out=$(docker build -q -t "$tag" "$root" 2>&1); then
    echo "$out" >&2
    exit 1
fi
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}'))"
