#!/usr/bin/env bash
# raftcart checkouts vs etcd puts, in one run on this machine, with the same
# load generator (wrk) and connection counts: installs what it needs (wrk,
# etcd, a venv with matplotlib for the sweep's plot), builds the release
# binary unless RAFTCART_BIN names one, then runs bench/compare.py.
#
#   bench/compare.sh [--connections 64] [--time 20] [--orders 500000] [--runs N]
#   bench/compare.sh --sweep          # 1, 4, 16, 64, 256 connections; writes a PNG
#   bench/compare.sh --ceiling        # HTTP alone, a no-op write, a checkout
#   bench/compare.sh --nodes 5
#
# bench/compare.py --help tells the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) sed -n 2,12p "$0"; exit 0 ;; esac

. scripts/prereqs.sh
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v etcd >/dev/null || need+=(etcd-server)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
venv="$HOME/.cache/raftcart-bench-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q matplotlib
fi
if [ -z "${RAFTCART_BIN:-}" ]; then
    cargo build --release --bin raftcart
    RAFTCART_BIN="$CARGO_TARGET_DIR/release/raftcart"
fi
RAFTCART_BIN="$RAFTCART_BIN" exec "$venv/bin/python" bench/compare.py "$@"
