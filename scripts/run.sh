#!/usr/bin/env bash
# Runs raftcart: by default a local three-node cluster with its gateway on
# 127.0.0.1:8000. Arguments go to `raftcart up` (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/prereqs.sh
cargo build --release --bin raftcart
exec "$CARGO_TARGET_DIR/release/raftcart" up "$@"
