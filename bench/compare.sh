#!/usr/bin/env bash
# raftcart checkouts vs etcd puts, in one run on this machine, with the same
# load generator (wrk) and connection count. Both are 3-node clusters on
# loopback that sync every write to disk before acknowledging it.
#
#   bench/compare.sh [--connections 64] [--time 30] [--orders 500000]
#
# raftcart: every request checks out a distinct unpaid order of a
# batch_init set (a real transaction: stock of each line, credit, paid
# flag), sent to the leader's API. etcd (Debian's etcd-server): puts of
# distinct keys through its v3 JSON gateway, sent to its leader.
# RAFTCART_BIN picks the binary (default: the release build, built here).
set -euo pipefail
cd "$(dirname "$0")/.."

conns=64 secs=30 orders=500000
while [ $# -gt 0 ]; do
    case "$1" in
        --connections) conns=$2; shift 2 ;;
        --time) secs=$2; shift 2 ;;
        --orders) orders=$2; shift 2 ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

. scripts/prereqs.sh
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ -z "${RAFTCART_BIN:-}" ]; then
    cargo build --release --bin raftcart
    RAFTCART_BIN="$CARGO_TARGET_DIR/release/raftcart"
fi

work=$(mktemp -d /tmp/raftcart-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
threads=2

# --- raftcart -------------------------------------------------------------
"$RAFTCART_BIN" up --data-dir "$work/raftcart" --gateway-port 18000 \
    --api-port 18001 --raft-port 18011 > "$work/up.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -sf localhost:18000/cluster/status >/dev/null 2>&1 && break
    sleep 0.2
done
leader=""
for _ in $(seq 100); do
    leader=$(curl -sf localhost:18001/cluster/status | python3 -c \
        'import json,sys; print(json.load(sys.stdin).get("leader_id") or "")' || true)
    [ -n "$leader" ] && break
    sleep 0.2
done
[ -n "$leader" ] || { echo "raftcart: no leader; see $work/up.log" >&2; exit 1; }
leader_api="127.0.0.1:$((18000 + leader))"
curl -sf -XPOST "$leader_api/payment/batch_init/100000/1000000000" >/dev/null
curl -sf -XPOST "$leader_api/stock/batch_init/100000/1000000000/1" >/dev/null
curl -sf -XPOST "$leader_api/orders/batch_init/$orders/100000/100000/1" >/dev/null
term() {
    curl -sf "$leader_api/cluster/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["term"])'
}
term_before=$(term)
echo "raftcart: leader node $leader, $orders unpaid orders; wrk -t$threads -c$conns -d${secs}s"
rc=$(wrk -t$threads -c"$conns" -d"${secs}s" -s bench/checkout.lua "http://$leader_api" -- $threads \
    | grep '^RESULT' | tee "$work/raftcart.result")
echo "  $rc"
# An election during the run (a heartbeat or append late under the load)
# shows as a new term.
echo "  raftcart term before the run $term_before, after $(term)"
# The requests were real checkouts: most of the first orders are now paid
# (wrk builds, and drops, one request per thread before the run).
paid=0
for o in $(seq 0 19); do
    curl -sf "$leader_api/orders/find/$o" | grep -q '"paid":true' && paid=$((paid + 1))
done
[ "$paid" -ge 10 ] || { echo "raftcart: only $paid of orders 0-19 paid after the run" >&2; exit 1; }
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

# --- etcd -------------------------------------------------------------------
cluster="e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803"
for i in 1 2 3; do
    etcd --name "e$i" --data-dir "$work/etcd$i" \
        --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
        --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token raftcart-bench \
        --log-level error > "$work/etcd$i.log" 2>&1 &
    pids+=($!)
done
endpoints="127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793"
for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint health >/dev/null 2>&1 && break
    sleep 0.2
done
etcd_leader=$(ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint status -w json | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["Status"]["leader"] == s["Status"]["header"]["member_id"]:
        print(s["Endpoint"])')
[ -n "$etcd_leader" ] || { echo "etcd: no leader; see $work/etcd*.log" >&2; exit 1; }
echo "etcd $(etcd --version | head -1 | awk '{print $3}'): leader $etcd_leader; wrk -t$threads -c$conns -d${secs}s"
ec=$(wrk -t$threads -c"$conns" -d"${secs}s" -s bench/etcd_put.lua "http://$etcd_leader" -- $threads \
    | grep '^RESULT' | tee "$work/etcd.result")
echo "  $ec"

python3 - "$rc" "$ec" <<'PY'
import sys
def parse(line):
    return {k: float(v) for k, v in (f.split("=") for f in line.split()[1:])}
r, e = parse(sys.argv[1]), parse(sys.argv[2])
print()
print(f"{'':24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'non-2xx':>9}")
for name, x in (("raftcart checkouts", r), ("etcd puts", e)):
    print(f"{name:24}{x['rps']:>10.0f}{x['p50']:>9.2f}{x['p99']:>9.2f}{x['p999']:>10.2f}{x['non2xx']:>9.0f}")
print(f"\nratio raftcart/etcd: {r['rps'] / e['rps']:.2f}x throughput, p99 {r['p99'] / e['p99']:.2f}x")
PY
