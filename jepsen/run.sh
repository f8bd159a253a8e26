#!/usr/bin/env bash
# Fault-injection tests: jepsen/run.sh [--nemesis NAME|all|mixed] [--time S] [--nodes 3|5]
# Builds raftcart if needed, sets up a Python venv (matplotlib for the
# plot), and runs the harness as root (network namespaces, iptables, tc).
# Exits 0 only when every run is valid.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/prereqs.sh

need_apt=()
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
if [ ${#need_apt[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

venv="$HOME/.cache/raftcart-jepsen-venv"
. scripts/venv.sh
ensure_venv "$venv" "import matplotlib" "matplotlib>=3.7,<4"

# The binary the integration tests use: same build (with the crash points,
# for the crash-point nemesis, as scripts/test.sh builds it), no extra
# compile.
bin="$CARGO_TARGET_DIR/debug/raftcart"
features=(--features raftcart/failpoints)
cargo test --workspace "${features[@]}" --no-run -q 2>/dev/null ||
    cargo test --workspace "${features[@]}" --no-run
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
cd jepsen
exec $sudo "$venv/bin/python" -m raftcart_jepsen --binary "$bin" --out results "$@"
