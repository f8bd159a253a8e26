#!/usr/bin/env bash
# Reproduces the debug-build figures in docs/performance.md: runs the
# consistency, stress batch_init and failover tests and prints what they
# measured.
# PROFILE=debug (default) or PROFILE=release.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/prereqs.sh
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
profile=()
[ "${PROFILE:-debug}" = release ] && profile=(--release)
for t in consistency failover; do
    cargo test "${profile[@]}" --features raftcart/failpoints --test cluster "$t::" -- --nocapture --test-threads 1 2>&1 |
        grep -E "batch_init|SIGKILL:|SIGSTOP|reads sent|consistency workload|test result"
done
