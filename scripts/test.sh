#!/usr/bin/env bash
# Runs every test: formatting and lints, domain unit and property tests,
# openraft's storage suite, the integration tests on real clusters, and the
# fault-injection suite (jepsen/: its checker's tests, then every nemesis),
# and the deployment (deploy/: manifests, compose with faults).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/prereqs.sh

step() { echo; echo "=== $* ==="; }

# One build for everything: the tests, jepsen and the deploy test all use
# the debug binary with the crash points compiled in (tests/cluster/crash_points.rs,
# jepsen's crash-point nemesis). Release builds (scripts/run.sh,
# deploy/build-image.sh) leave them out.
features=(--features raftcart/failpoints)

step "cargo fmt --check; no import cycle between modules; every doc link resolves"
cargo fmt --all -- --check
python3 scripts/module_cycles.py
python3 scripts/doc_links.py
step "cargo build (every test target)"
cargo test --workspace "${features[@]}" --no-run
step "cargo clippy -D warnings"
# Clippy's check build runs RocksDB's build script apart from the test
# build's, which would compile RocksDB's C++ (most of a cold run) a second
# time: point it at the library the test build just made instead.
rocksdb_lib=$(ls -td "$CARGO_TARGET_DIR"/debug/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -1 || true)
rocksdb_env=()
[ -n "$rocksdb_lib" ] && rocksdb_env=(ROCKSDB_LIB_DIR="$(dirname "$rocksdb_lib")" ROCKSDB_STATIC=1)
env "${rocksdb_env[@]}" cargo clippy --workspace --all-targets "${features[@]}" -- -D warnings
step "cargo doc (warnings are errors)"
env "${rocksdb_env[@]}" RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps "${features[@]}"
step "cargo test (unit, property, storage suite, clusters, crash points, fuzzing)"
# Every test but the crash points, then the crash points alone: their
# checkout load and aborted nodes would otherwise share the 2 cores with
# the timing-sensitive cluster tests. Each crash point runs once here;
# CRASH_POINT_RUNS=10 for more.
cargo test --workspace "${features[@]}" -- --skip crash_points::
cargo test --workspace "${features[@]}" --test cluster crash_points::
step "locust pacing unit tests"
(cd locust && python3 -m unittest test_pacing)
step "jepsen checker unit tests"
(cd jepsen && python3 -m unittest discover -s tests)
step "jepsen: every nemesis alone, 20 s each"
bash jepsen/run.sh --nemesis all --time 20
# The image packs the debug binary the tests above built: a release build
# would add about half an hour to a cold run. deploy/build-image.sh alone
# packs the release binary.
step "deploy: Kubernetes manifests, then docker compose with faults"
RAFTCART_BIN="$CARGO_TARGET_DIR/debug/raftcart" bash deploy/test.sh
echo
echo "all tests passed"
