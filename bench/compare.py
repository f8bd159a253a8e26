#!/usr/bin/env python3
"""raftcart checkouts against etcd puts, on this machine, in one run, with
the same load generator (wrk, 2 threads) and the same connection counts.
Both are clusters on loopback that sync every write to disk before
acknowledging it. Run through bench/compare.sh, which installs wrk, etcd
and matplotlib first.

    bench/compare.sh                          # 64 connections, one round
    bench/compare.sh --runs 3                 # three rounds, fresh clusters each
    bench/compare.sh --sweep                  # 1, 4, 16, 64, 256 connections, and a PNG
    bench/compare.sh --ceiling                # the layers under a checkout
    bench/compare.sh --nodes 5                # clusters of five

raftcart: each request checks out a distinct unpaid order (the stock of
two lines, the credit, the paid flag), sent to the leader's API ("direct")
or to the gateway ("gateway"). The orders are set unpaid again (a
batch_init of --orders) before each raftcart run, and the run starts once
every node has applied it. etcd (Debian's etcd-server): puts of distinct
keys through its v3 JSON gateway, sent to its leader.

For every run: requests/s, p50/p99/p99.9 latency, non-2xx responses, and
CPU time per request (user + system, from /proc) of the cluster's
processes and of wrk. --ceiling runs, against the leader: a request the
HTTP server answers alone (/cluster/bench/http), a no-op write through
Raft (/cluster/bench/noop: proposer, replication, synced log, apply that
touches no record) and a checkout, and prints what each layer adds.
Bounded in time: every wrk run lasts --time seconds, every wait has a
deadline. Exits 1 if a raftcart run had a non-2xx answer or an election.
"""
import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = 2
GATEWAY_PORT = 18000
ETCD_CLIENT_PORT = 23790
ETCD_PEER_PORT = 23800
TICK = os.sysconf("SC_CLK_TCK")
SWEEP = [1, 4, 16, 64, 256]


def http(method, url, token=None, timeout=120.0):
    req = urllib.request.Request(url, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def wait_until(what, check, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"gave up waiting for {what}")


def wrk(url, script, conns, secs, *script_args):
    """One wrk run: its RESULT line as numbers, plus wrk's own CPU seconds."""
    threads = min(THREADS, conns)  # wrk needs a connection per thread
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--timeout", "10s",
           "-s", os.path.join(HERE, script), url, "--", str(threads), *map(str, script_args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    line = next((l for l in out.splitlines() if l.startswith("RESULT")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({' '.join(cmd)}):\n{out}")
    result = {k: float(v) for k, v in (f.split("=") for f in line.split()[1:])}
    result["wrk_cpu"] = usage.ru_utime + usage.ru_stime
    return result


class Raftcart:
    def __init__(self, binary, nodes, work):
        self.nodes = nodes
        self.data = os.path.join(work, "raftcart")
        self.log = open(os.path.join(work, "raftcart-up.log"), "w")
        self.up = subprocess.Popen(
            [binary, "up", "--data-dir", self.data, "--nodes", str(nodes),
             "--gateway-port", str(GATEWAY_PORT), "--api-port", str(GATEWAY_PORT + 1),
             "--raft-port", str(GATEWAY_PORT + 11)],
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_until("raftcart's leader", lambda: self.leader() is not None)
            self.token = open(os.path.join(self.data, "admin.token")).read().strip()
            self.pids = [int(open(os.path.join(self.data, f"node{n}.pid")).read())
                         for n in range(1, nodes + 1)]
            leader = self.leader()
            self.leader_url = f"http://127.0.0.1:{GATEWAY_PORT + leader}"
            self.gateway_url = f"http://127.0.0.1:{GATEWAY_PORT}"
            http("POST", f"{self.leader_url}/payment/batch_init/100000/1000000000")
            http("POST", f"{self.leader_url}/stock/batch_init/100000/1000000000/1")
        except BaseException:
            self.stop()
            raise

    def status(self, node):
        return http("GET", f"http://127.0.0.1:{GATEWAY_PORT + node}/cluster/status", timeout=5)

    def leader(self):
        for n in range(1, self.nodes + 1):
            try:
                s = self.status(n)
            except OSError:
                continue
            if s.get("leader_id") == s.get("node_id"):
                return n
        return None

    def term(self):
        """The highest term any node reports."""
        terms = []
        for n in range(1, self.nodes + 1):
            try:
                terms.append(self.status(n)["term"])
            except OSError:
                pass
        return max(terms)

    def reset_orders(self, orders):
        """Every order unpaid again; returns once every node applied it."""
        http("POST", f"{self.leader_url}/orders/batch_init/{orders}/100000/100000/1")
        target = self.status(self.leader())["last_applied"]
        wait_until("every node applying the orders",
                   lambda: all((self.status(n)["last_applied"] or 0) >= target
                               for n in range(1, self.nodes + 1)))

    def paid(self, order):
        return http("GET", f"{self.leader_url}/orders/find/{order}")["paid"]

    def stop(self):
        self.up.send_signal(signal.SIGINT)
        try:
            self.up.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.up.kill()
            self.up.wait()


class Etcd:
    def __init__(self, nodes, work):
        names = [f"e{i}" for i in range(1, nodes + 1)]
        cluster = ",".join(f"{n}=http://127.0.0.1:{ETCD_PEER_PORT + i}"
                           for i, n in enumerate(names, 1))
        self.procs = []
        for i, name in enumerate(names, 1):
            client = f"http://127.0.0.1:{ETCD_CLIENT_PORT + i}"
            peer = f"http://127.0.0.1:{ETCD_PEER_PORT + i}"
            log = open(os.path.join(work, f"etcd{i}.log"), "w")
            self.procs.append(subprocess.Popen(
                ["etcd", "--name", name, "--data-dir", os.path.join(work, f"etcd{i}"),
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", cluster, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "raftcart-bench", "--log-level", "error"],
                stdout=log, stderr=subprocess.STDOUT))
        self.pids = [p.pid for p in self.procs]
        self.urls = [f"http://127.0.0.1:{ETCD_CLIENT_PORT + i}" for i in range(1, nodes + 1)]
        try:
            wait_until("etcd's leader", lambda: self.leader() is not None)
        except BaseException:
            self.stop()
            raise
        self.leader_url = self.leader()

    def leader(self):
        for url in self.urls:
            try:
                s = http("POST", f"{url}/v3/maintenance/status", timeout=5)
            except OSError:
                continue
            if s.get("leader") and s["leader"] == s["header"]["member_id"]:
                return url
        return None

    def version(self):
        return http("GET", f"{self.urls[0]}/version")["etcdserver"]

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def measured(name, conns, result, cpu, nodes, leader_cpu=None):
    n = max(result["requests"], 1)
    row = dict(system=name, connections=conns, rps=result["rps"], p50=result["p50"],
               p99=result["p99"], p999=result["p999"], non2xx=int(result["non2xx"]),
               requests=int(result["requests"]),
               server_cpu_us=cpu / n * 1e6, wrk_cpu_us=result["wrk_cpu"] / n * 1e6)
    if leader_cpu is not None:
        row["leader_cpu_us"] = leader_cpu / n * 1e6
    print(f"  {name:<18} c={conns:<4} {row['rps']:>9.0f}/s  p50 {row['p50']:>7.2f}  "
          f"p99 {row['p99']:>7.2f}  p99.9 {row['p999']:>7.2f} ms  non-2xx {row['non2xx']:>6}  "
          f"CPU/request: {nodes} nodes {row['server_cpu_us']:.0f} us, wrk {row['wrk_cpu_us']:.0f} us",
          flush=True)
    return row


def run_raftcart(rc, name, url, conns, secs, script, *script_args):
    """One wrk run against raftcart, with the CPU of every node and of the
    leader alone, and the elections it saw."""
    term = rc.term()
    leader = rc.leader()
    if leader is None:
        raise SystemExit("raftcart: no leader before the run")
    leader_pid = [rc.pids[leader - 1]]
    # The gateway runs in the `raftcart up` process.
    gateway_pid = [rc.up.pid]
    before, leader_before = cpu_seconds(rc.pids), cpu_seconds(leader_pid)
    gateway_before = cpu_seconds(gateway_pid)
    result = wrk(url, script, conns, secs, *script_args)
    cpu, leader_cpu = cpu_seconds(rc.pids) - before, cpu_seconds(leader_pid) - leader_before
    gateway_cpu = cpu_seconds(gateway_pid) - gateway_before
    row = measured(name, conns, result, cpu, rc.nodes, leader_cpu)
    row["gateway_cpu_us"] = gateway_cpu / max(result["requests"], 1) * 1e6
    if url == rc.gateway_url:
        print(f"  {'':<18} gateway CPU/request {row['gateway_cpu_us']:.0f} us", flush=True)
    row["elections"] = rc.term() - term
    if row["elections"]:
        print(f"  raftcart: the term moved from {term} to {term + row['elections']} during the run")
    return row


def run_checkouts(rc, conns, a, via):
    rc.reset_orders(a.orders)
    url = rc.leader_url if via == "direct" else rc.gateway_url
    return run_raftcart(rc, f"raftcart {via}", url, conns, a.time, "checkout.lua")


def run_etcd(etcd, conns, a):
    before = cpu_seconds(etcd.pids)
    result = wrk(etcd.leader_url, "etcd_put.lua", conns, a.time)
    return measured("etcd", conns, result, cpu_seconds(etcd.pids) - before, len(etcd.pids))


def compare(a, work, conn_list):
    rows = []
    rc = Raftcart(a.bin, a.nodes, work)
    try:
        print(f"raftcart ({a.nodes} nodes, leader {rc.leader_url}), {a.orders} unpaid orders "
              f"before each run; wrk -t{THREADS} -d{a.time}s", flush=True)
        for conns in conn_list:
            rows.append(run_checkouts(rc, conns, a, "direct"))
            if not a.no_gateway:
                rows.append(run_checkouts(rc, conns, a, "gateway"))
        rss = [int(next(l.split()[1] for l in open(f"/proc/{pid}/status")
                        if l.startswith("VmRSS"))) // 1024 for pid in rc.pids]
        print(f"  raftcart node RSS after the runs: {', '.join(f'{m} MB' for m in rss)}")
        # The runs checked out real orders: the first ones are paid now.
        paid = sum(rc.paid(o) for o in range(20))
        if paid < 10:
            raise SystemExit(f"raftcart: only {paid} of orders 0-19 paid after the runs")
    finally:
        rc.stop()
    if a.no_etcd:
        return rows
    etcd = Etcd(a.nodes, work)
    try:
        print(f"etcd {etcd.version()} ({a.nodes} nodes, leader {etcd.leader_url})", flush=True)
        for conns in conn_list:
            rows.append(run_etcd(etcd, conns, a))
    finally:
        etcd.stop()
    return rows


def ceiling(a, work):
    """The same connections against the leader, one layer more each run."""
    conns = a.connections[0]
    rc = Raftcart(a.bin, a.nodes, work)
    try:
        print(f"raftcart ({a.nodes} nodes), against the leader: wrk -t{THREADS} -c{conns} "
              f"-d{a.time}s", flush=True)
        rows = [run_raftcart(rc, layer, rc.leader_url, conns, a.time, "operator_post.lua",
                             path, rc.token)
                for layer, path in (("http", "/cluster/bench/http"),
                                    ("noop", "/cluster/bench/noop"))]
        rc.reset_orders(a.orders)
        rows.append(run_raftcart(rc, "checkout", rc.leader_url, conns, a.time, "checkout.lua"))
    finally:
        rc.stop()
    print()
    print(f"{'layer':<10}{'req/s':>10}{'p99 ms':>9}{'CPU us per request:':>22}{'leader':>8}"
          f"{'followers':>10}{'all nodes':>10}{'adds':>7}{'wrk':>6}")
    prev = 0.0
    for r in rows:
        followers = r["server_cpu_us"] - r["leader_cpu_us"]
        print(f"{r['system']:<10}{r['rps']:>10.0f}{r['p99']:>9.2f}{'':>22}{r['leader_cpu_us']:>8.0f}"
              f"{followers:>10.0f}{r['server_cpu_us']:>10.0f}{r['server_cpu_us'] - prev:>7.0f}"
              f"{r['wrk_cpu_us']:>6.0f}")
        prev = r["server_cpu_us"]
    http_rps, noop_rps, co_rps = (r["rps"] for r in rows)
    print(f"\ncheckouts / no-op writes: {co_rps / noop_rps:.2f}; no-op writes / HTTP-only: "
          f"{noop_rps / http_rps:.2f}")
    return rows


def summarise(rows):
    print()
    print(f"{'':<20}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'non-2xx':>9}")
    for r in rows:
        print(f"{r['system']:<20}{r['connections']:>6}{r['rps']:>10.0f}{r['p50']:>9.2f}"
              f"{r['p99']:>9.2f}{r['p999']:>10.2f}{r['non2xx']:>9}")
    print()
    by = {(r["system"], r["connections"]): r for r in rows}
    for conns in sorted({r["connections"] for r in rows}):
        e = by.get(("etcd", conns))
        d = by.get(("raftcart direct", conns))
        g = by.get(("raftcart gateway", conns))
        parts = []
        if d and e:
            parts.append(f"raftcart/etcd {d['rps'] / e['rps']:.2f}x throughput, "
                         f"p99 {d['p99'] / e['p99']:.2f}x")
        if d and g:
            parts.append(f"gateway/direct {g['rps'] / d['rps']:.2f}")
        print(f"c={conns}: " + "; ".join(parts))


def plot(rows, path, nodes):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for system, style in (("raftcart direct", "o-"), ("raftcart gateway", "s--"), ("etcd", "^-")):
        pts = sorted((r["connections"], r["rps"], r["p99"]) for r in rows if r["system"] == system)
        if not pts:
            continue
        xs = [p[0] for p in pts]
        ax1.plot(xs, [p[1] for p in pts], style, label=system)
        ax2.plot(xs, [p[2] for p in pts], style, label=system)
    for ax, title in ((ax1, "throughput (requests/s)"), (ax2, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(SWEEP, [str(c) for c in SWEEP])
        ax.set_xlabel("client connections (wrk, 2 threads)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    ax2.set_yscale("log")
    fig.suptitle(f"raftcart checkouts vs etcd puts, {nodes}-node clusters on one machine "
                 "(bench/compare.sh --sweep)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=os.environ.get("RAFTCART_BIN", "raftcart"))
    p.add_argument("--connections", type=lambda s: [int(c) for c in s.split(",")], default=[64],
                   help="comma-separated connection counts (default 64)")
    p.add_argument("--time", type=int, default=20, help="seconds per wrk run")
    p.add_argument("--orders", type=int, default=500_000,
                   help="unpaid orders before each raftcart run (more than a run checks out)")
    p.add_argument("--runs", type=int, default=1, help="rounds, each on fresh clusters")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--sweep", action="store_true", help=f"connections {SWEEP}, and a PNG")
    p.add_argument("--ceiling", action="store_true", help="HTTP, no-op write and checkout")
    p.add_argument("--no-gateway", action="store_true", help="skip the runs through the gateway")
    p.add_argument("--no-etcd", action="store_true", help="raftcart only (to compare builds)")
    p.add_argument("--out", default=os.path.join(HERE, "results"),
                   help="where the CSV (and the PNG) go")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for run in range(a.runs):
        if a.runs > 1:
            print(f"\n--- round {run + 1} of {a.runs} ---", flush=True)
        with tempfile.TemporaryDirectory(prefix="raftcart-bench.") as work:
            if a.ceiling:
                rows += ceiling(a, work)
            else:
                round_rows = compare(a, work, SWEEP if a.sweep else a.connections)
                for r in round_rows:
                    r["round"] = run + 1
                summarise(round_rows)
                rows += round_rows
    name = "ceiling" if a.ceiling else "sweep" if a.sweep else "compare"
    with open(os.path.join(a.out, f"{name}.csv"), "w", newline="") as f:
        fields = sorted({k for r in rows for k in r})
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    print(f"\nfigures: {os.path.join(a.out, name + '.csv')}")
    if a.sweep:
        plot(rows, os.path.join(a.out, "sweep.png"), a.nodes)
    bad = [r for r in rows if r["system"] != "etcd" and (r["non2xx"] or r.get("elections"))]
    if bad:
        print(f"raftcart runs with failed requests or elections: {len(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
