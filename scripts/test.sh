#!/usr/bin/env bash
# Runs every test: formatting and lints, domain unit and property tests,
# openraft's storage suite, and the integration tests on real clusters.
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
echo
echo "all tests passed"
