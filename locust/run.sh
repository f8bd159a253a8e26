#!/usr/bin/env bash
# Headless Locust run against a running raftcart (or any implementation of
# the course's API). Installs Locust into its own venv when missing.
#
#   locust/run.sh [--host URL] [--users N] [--spawn-rate R] [--time DURATION]
#                 [--scenario stress|mixed|status] [--no-populate] [--lockstep]
#                 [--out DIR]
#
# Defaults: http://127.0.0.1:8000, 100 users, spawn rate 100/s, 60s, the
# stress scenario, populate first. Writes Locust's CSVs and HTML report
# into locust/results/<scenario>-<users>u-<time>/ (or --out). --lockstep
# uses Locust's constant_pacing instead of each user's own steady schedule
# (see locustfile.py).
set -euo pipefail
cd "$(dirname "$0")"

host=http://127.0.0.1:8000 users=100 rate=100 duration=60s scenario=stress populate=1 out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --host) host=$2; shift 2 ;;
        --users) users=$2; shift 2 ;;
        --spawn-rate) rate=$2; shift 2 ;;
        --time) duration=$2; shift 2 ;;
        --scenario) scenario=$2; shift 2 ;;
        --no-populate) populate=0; shift ;;
        --lockstep) export RAFTCART_LOCKSTEP=1; shift ;;
        --out) out=$2; shift 2 ;;
        -h|--help) sed -n 2,14p "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$scenario" in
    stress) class=StressUser ;;
    mixed) class=MixedUser ;;
    status) class=StatusUser ;;
    *) echo "--scenario must be stress, mixed or status" >&2; exit 2 ;;
esac

venv="${RAFTCART_LOCUST_VENV:-$HOME/.cache/raftcart-locust-venv}"
. ../scripts/venv.sh
ensure_venv "$venv" "import locust" "locust==2.*"

out="${out:-results/$scenario-${users}u-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
if [ "$populate" = 1 ]; then
    python3 populate.py "$host" | tee "$out/populate.txt"
fi
"$venv/bin/locust" -f locustfile.py "$class" --headless --host "$host" \
    --users "$users" --spawn-rate "$rate" --run-time "$duration" --stop-timeout 10 \
    --csv "$out/locust" --html "$out/report.html" --only-summary 2>&1 | tee "$out/summary.txt"
echo "results in $(cd "$out" && pwd)"
