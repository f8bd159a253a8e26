#!/usr/bin/env python3
"""Failover, measured as a client sees it: checkouts flow through the
gateway (:PORT) while the leader is faulted, again and again; for each
fault, the longest stretch with no acknowledged checkout (the write gap).

    python3 bench/failover.py --bin target/release/raftcart --fault kill --runs 10
    python3 bench/failover.py --fault stop --runs 10      # SIGSTOP 3 s, then SIGCONT
    python3 bench/failover.py --fault transfer --runs 10  # raftcart cluster transfer-leader
    python3 bench/failover.py --fault term --runs 10      # SIGTERM: a planned restart, `up` starts it again
    python3 bench/failover.py --fault kill --runs 5 -- --nodes 5   # a cluster of five

Arguments after `--` go to `raftcart up` (timing flags, say). At the end:
min/median/max of the gaps, the failed requests (any non-2xx), the terms,
and whether every acknowledged checkout is paid on every node. Exits 1 if
a request failed or an acknowledged checkout is missing. Standard library
only; bounded in time (each run waits at most --settle seconds for the
cluster to heal).
"""
import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ORDERS = 200_000
# Nodes in the cluster: 3, or what `--nodes` after `--` asks `up` for.
NODES = 3


def request(port, method, path, headers=None, timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def status(port):
    try:
        code, body = request(port, "GET", "/cluster/status", timeout=0.5)
        return json.loads(body) if code == 200 else None
    except (OSError, ValueError):
        return None


class Load:
    """Client threads checking out distinct orders through the gateway."""

    def __init__(self, port, clients):
        self.port = port
        self.next_order = 0
        self.lock = threading.Lock()
        self.acks = []  # (monotonic time, order id)
        self.failures = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def take_order(self):
        with self.lock:
            self.next_order += 1
            return self.next_order - 1

    def client(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        while not self.stop.is_set():
            order = self.take_order()
            if order >= ORDERS:
                return
            try:
                conn.request("POST", f"/orders/checkout/{order}",
                             headers={"Idempotency-Key": f"failover-{order}"})
                resp = conn.getresponse()
                resp.read()
                code = resp.status
            except OSError as e:
                # A cut connection: the gateway lives on, so this is a
                # failure of the service, not of the fault.
                self.failures.append((order, str(e)))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                continue
            if 200 <= code < 300:
                with self.lock:
                    self.acks.append((time.monotonic(), order))
            else:
                self.failures.append((order, code))

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=20)

    def gap_around(self, start, end):
        """Longest stretch in [start, end] without an acknowledgement."""
        with self.lock:
            times = [t for t, _ in self.acks if start <= t <= end]
        points = [start] + sorted(times) + [end]
        return max(b - a for a, b in zip(points, points[1:]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=os.environ.get("RAFTCART_BIN", "raftcart"))
    p.add_argument("--fault", choices=["kill", "stop", "transfer", "term"], default="kill")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--port", type=int, default=19000, help="gateway port; nodes on the next ones")
    p.add_argument("--settle", type=float, default=20.0)
    # `up` gives up on a node that exits 5 times in a row within 10 s of
    # starting: leave the restarted node longer than that.
    p.add_argument("--pause", type=float, default=11.0, help="seconds between faults")
    p.add_argument("up_args", nargs="*")
    a = p.parse_args()
    global NODES
    for i, arg in enumerate(a.up_args):
        if arg == "--nodes" and i + 1 < len(a.up_args):
            NODES = int(a.up_args[i + 1])
        elif arg.startswith("--nodes="):
            NODES = int(arg.split("=", 1)[1])

    work = tempfile.mkdtemp(prefix="raftcart-failover.")
    data = os.path.join(work, "data")
    api = a.port + 1
    up = subprocess.Popen(
        [a.bin, "up", "--data-dir", data, "--gateway-port", str(a.port),
         "--api-port", str(api), "--raft-port", str(a.port + 11), *a.up_args],
        stdout=open(os.path.join(work, "up.log"), "w"), stderr=subprocess.STDOUT)
    try:
        return run(a, data, api, up, work)
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=15)
        except subprocess.TimeoutExpired:
            up.kill()


def leader_of(api):
    for _ in range(200):
        for n in range(NODES):
            s = status(api + n)
            if s and s.get("leader_id") and s["leader_id"] == s["node_id"]:
                return s["leader_id"], s["term"]
        time.sleep(0.05)
    raise SystemExit("no leader")


def healed(api, deadline):
    """Every node answers, one leader, every member caught up."""
    while time.monotonic() < deadline:
        views = [status(api + n) for n in range(NODES)]
        if all(views):
            leaders = {v["leader_id"] for v in views}
            applied = {v["last_applied"] for v in views}
            if len(leaders) == 1 and None not in leaders and max(applied) - min(applied) < 200:
                return True
        time.sleep(0.1)
    return False


def restarted(data, node, old_pid, settle):
    """`up` has started the node again (a new pid)."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        try:
            if int(open(os.path.join(data, f"node{node}.pid")).read()) != old_pid:
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return False


def run(a, data, api, up, work):
    leader_of(api)
    for path in ("/payment/batch_init/1000/1000000000",
                 "/stock/batch_init/1000/1000000000/1",
                 f"/orders/batch_init/{ORDERS}/1000/1000/1"):
        code, body = request(a.port, "POST", path, timeout=60)
        assert code == 200, (path, code, body)
    _, first_term = leader_of(api)
    load = Load(a.port, a.clients)
    load.start()
    gaps = []
    try:
        for run_no in range(a.runs):
            time.sleep(a.pause if run_no else 1.5)
            leader, term = leader_of(api)
            pid = int(open(os.path.join(data, f"node{leader}.pid")).read())
            at = time.monotonic()
            if a.fault == "kill":
                os.kill(pid, signal.SIGKILL)
            elif a.fault == "term":
                os.kill(pid, signal.SIGTERM)
            elif a.fault == "stop":
                os.kill(pid, signal.SIGSTOP)
                time.sleep(3)
                os.kill(pid, signal.SIGCONT)
            else:
                out = subprocess.run(
                    [a.bin, "cluster", "transfer-leader", "--addr",
                     f"http://127.0.0.1:{api + leader - 1}", "--data-dir", data],
                    capture_output=True, text=True, timeout=30)
                if out.returncode != 0:
                    print(f"run {run_no}: transfer-leader failed: {out.stderr.strip()}")
            if a.fault in ("kill", "term") and not restarted(data, leader, pid, a.settle):
                print(f"run {run_no}: node {leader} was not restarted within {a.settle} s")
                return 1
            if not healed(api, time.monotonic() + a.settle):
                print(f"run {run_no}: the cluster did not heal within {a.settle} s; see {work}/up.log")
                return 1
            time.sleep(0.5)
            new_leader, new_term = leader_of(api)
            gap = load.gap_around(at - 0.2, time.monotonic())
            gaps.append(gap)
            print(f"run {run_no}: {a.fault} node {leader} (term {term}): "
                  f"new leader node {new_leader} (term {new_term}), write gap {gap:.3f} s",
                  flush=True)
    finally:
        load.finish()
    if not healed(api, time.monotonic() + a.settle):
        print(f"the cluster did not heal within {a.settle} s; see {work}/up.log")
        return 1
    _, last_term = leader_of(api)
    acked = [o for _, o in load.acks]
    missing = []
    for n in range(NODES):
        for order in acked[:: max(1, len(acked) // 300)] + acked[-50:]:
            code, body = request(api + n, "GET", f"/orders/find/{order}?stale=true")
            if code != 200 or not json.loads(body)["paid"]:
                missing.append((n + 1, order))
    print()
    print(f"fault {a.fault}, {a.runs} runs, {a.clients} clients, up {' '.join(a.up_args) or '(defaults)'}")
    print(f"write gap s: min {min(gaps):.3f}  median {statistics.median(gaps):.3f}  max {max(gaps):.3f}")
    print(f"acknowledged checkouts: {len(acked)}; failed requests: {len(load.failures)}"
          f"{' e.g. ' + str(load.failures[:3]) if load.failures else ''}")
    print(f"terms: {first_term} before the first fault, {last_term} at the end")
    print(f"acknowledged checkouts checked paid on every node: "
          f"{'all' if not missing else f'MISSING {missing[:5]}'}")
    return 1 if load.failures or missing else 0


if __name__ == "__main__":
    sys.exit(main())
