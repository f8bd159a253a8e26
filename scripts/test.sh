#!/usr/bin/env bash
# Runs every test: formatting and lints, domain unit and property tests,
# openraft's storage suite, the integration tests on real clusters, and the
# fault-injection suite (jepsen/: its checker's tests, then every nemesis),
# and the deployment (deploy/: manifests, compose with faults).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/prereqs.sh

step() { echo; echo "=== $* ==="; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test (unit, property, storage suite, clusters)"
cargo test --workspace
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
