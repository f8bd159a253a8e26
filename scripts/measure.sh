#!/usr/bin/env bash
# Reproduces the figures in docs/MEASUREMENTS.md: runs the consistency,
# stress batch_init and failover tests on an optimised build and prints
# what they measured.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/prereqs.sh
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
for t in consistency failover; do
    cargo test --release --test "$t" -- --nocapture --test-threads 1 2>&1 |
        grep -E "batch_init|SIGKILL:|SIGSTOP|reads sent|consistency workload|test result"
done
