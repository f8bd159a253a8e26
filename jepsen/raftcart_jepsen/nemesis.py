"""Faults. Each nemesis starts a fault and heals it; the schedule runs them
in turn (or picks at random) while the workload runs, and records each
fault window."""

import json
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request

from .cluster import API_PORT, RAFT_PORT, api
from .net import ip_of


class Nemesis:
    name = "none"

    def __init__(self, cluster, net, rng):
        self.cluster, self.net, self.rng = cluster, net, rng

    def others(self, node):
        return [n for n in self.cluster.nodes if n != node]

    def target(self, prefer_leader):
        leader = self.cluster.leader()
        if prefer_leader and leader is not None:
            return leader
        return self.rng.choice(self.cluster.nodes)


class KillLeader(Nemesis):
    name = "kill-leader"
    prefer_leader = True

    def start(self):
        self.node = self.target(self.prefer_leader)
        self.cluster.kill(self.node)
        return f"SIGKILL node {self.node}"

    def stop(self):
        self.cluster.start(self.node)


class KillRandom(KillLeader):
    name = "kill-random"
    prefer_leader = False


class Pause(Nemesis):
    name = "pause"

    def start(self):
        self.node = self.target(self.rng.random() < 0.5)
        self.cluster.pause(self.node)
        return f"SIGSTOP node {self.node}"

    def stop(self):
        self.cluster.resume(self.node)


class PartitionLeader(Nemesis):
    name = "partition-leader"

    def start(self):
        node = self.target(True)
        self.net.partition([[node], self.others(node)])
        return f"isolate node {node}"

    def stop(self):
        self.net.heal()


class PartitionHalves(Nemesis):
    name = "partition-halves"

    def start(self):
        nodes = self.cluster.nodes[:]
        self.rng.shuffle(nodes)
        minority = nodes[: (len(nodes) - 1) // 2]
        majority = nodes[len(minority):]
        self.net.partition([minority, majority])
        return f"split {sorted(minority)} | {sorted(majority)}"

    def stop(self):
        self.net.heal()


class PartitionBridge(Nemesis):
    """Two sides that cannot see each other, and one node that sees both."""
    name = "partition-bridge"

    def start(self):
        nodes = self.cluster.nodes[:]
        self.rng.shuffle(nodes)
        bridge, rest = nodes[0], nodes[1:]
        left, right = rest[: len(rest) // 2], rest[len(rest) // 2:]
        self.net.partition([left, right])
        return f"bridge node {bridge} between {sorted(left)} and {sorted(right)}"

    def stop(self):
        self.net.heal()


class SlowNetwork(Nemesis):
    name = "slow-network"

    def start(self):
        self.net.slow(rate_kbit=2000, loss_pct=5)
        return "every link: 2 Mbit/s, 5% of packets dropped"

    def stop(self):
        self.net.fast()


class Membership(Nemesis):
    """Removes a node (sometimes the leader), wipes it, and adds it back
    empty as a learner, promoted once it has caught up."""
    name = "membership"

    def start(self):
        self.node = self.target(self.rng.random() < 0.3)
        other = self.rng.choice(self.others(self.node))
        # A node restarted a moment ago may not listen yet: ask the others.
        for asked in [other] + [n for n in self.others(self.node) if n != other]:
            ok, out = self.cluster.cli("remove", "--addr", api(asked), "--id", str(self.node))
            if ok or "unreachable" not in out:
                break
        self.removed = ok
        if ok:
            self.cluster.kill(self.node)
            self.cluster.wipe(self.node)
        return f"remove node {self.node}: {out}"

    def stop(self):
        if not self.removed:
            return
        node = self.node
        self.cluster.start(node, join=True)
        time.sleep(0.5)
        other = self.others(node)[0]
        c = self.cluster
        for _ in range(50):
            ok, out = c.cli("add-learner", "--addr", api(other), "--id", str(node),
                            "--api", f"{ip_of(node)}:{API_PORT}",
                            "--raft", f"{ip_of(node)}:{RAFT_PORT}")
            if ok or "already a member" in out:
                break
            time.sleep(0.2)
        for _ in range(150):
            ok, out = c.cli("promote", "--addr", api(other), "--id", str(node))
            if ok:
                return
            time.sleep(0.2)
        raise RuntimeError(f"could not promote node {node} back: {out}")



class CrashAll(Nemesis):
    name = "crash-all"

    def start(self):
        for n in self.cluster.nodes:
            self.cluster.kill(n)
        return "SIGKILL every node"

    def stop(self):
        for n in self.cluster.nodes:
            self.cluster.start(n)


# Ten bytes claiming a 16 TiB string (bincode): a node that decodes them
# without a limit aborts.
FRAME_16_TIB = bytes([0x00, 0xFD, 0, 0, 0, 0, 0, 0x10, 0, 0])
RAFT_ROUTES = ["/raft/append", "/raft/vote", "/raft/snapshot", "/raft/forward",
               "/raft/key-check"]
OPERATOR_CALLS = [("POST", "/cluster/remove/{n}"), ("POST", "/cluster/promote/{n}"),
                  ("POST", "/cluster/add-learner/99/10.0.0.99:1/10.0.0.99:2"),
                  ("POST", "/cluster/snapshot"), ("GET", "/cluster/backup")]


class Hostile(Nemesis):
    """Throws, at every node, what a hostile network sends: the 16 TiB frame,
    random bytes and forged Raft requests (no MAC, a made-up MAC) on the
    Raft port, and operator calls without the admin token on the API port.
    Every answer must be a 4xx (never a 5xx, never a dropped connection from
    a dying node), and no node may stop."""
    name = "hostile"

    def start(self):
        self.running = {n: self.cluster.procs[n].pid for n in self.cluster.running()}
        self.stopping = threading.Event()
        self.problems = []
        self.sent = 0
        self.thread = threading.Thread(target=self._throw, daemon=True)
        self.thread.start()
        return f"hostile frames and tokenless operator calls at nodes {sorted(self.running)}"

    def _send(self, method, url, body=None, headers=None):
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError):
            # Cut off by another fault, or timed out under load: not an answer.
            return None, b""

    def _expect_4xx(self, what, status, body):
        self.sent += 1
        if status is None:
            return
        if not 400 <= status < 500:
            self.problems.append(f"{what}: HTTP {status}")
            return
        try:
            if not json.loads(body).get("error"):
                self.problems.append(f"{what}: {status} without a JSON error")
        except ValueError:
            self.problems.append(f"{what}: {status} with a body that is not JSON")

    def _throw(self):
        rng = random.Random(self.rng.random())
        while not self.stopping.is_set():
            for node in list(self.running):
                raft = f"http://{ip_of(node)}:{RAFT_PORT}"
                for route in RAFT_ROUTES:
                    for body, headers in [
                        (FRAME_16_TIB, {}),
                        (FRAME_16_TIB, {"x-raftcart-mac": "00" * 32}),
                        (os.urandom(rng.randrange(1, 2000)), {}),
                        (os.urandom(rng.randrange(1, 200)), {"x-raftcart-mac": "ab" * 32}),
                    ]:
                        status, answer = self._send("POST", raft + route, body, headers)
                        self._expect_4xx(f"node {node} {route}", status, answer)
                for method, path in OPERATOR_CALLS:
                    path = path.format(n=rng.choice(self.cluster.nodes))
                    status, answer = self._send(method, api(node) + path)
                    self._expect_4xx(f"node {node} {method} {path}", status, answer)
            self.stopping.wait(0.05)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=10)
        for node, pid in self.running.items():
            p = self.cluster.procs.get(node)
            if p is None or p.pid != pid or p.poll() is not None:
                self.problems.append(f"node {node} stopped (exit status {p and p.poll()})")
        if self.problems:
            raise RuntimeError(f"hostile: {len(self.problems)} problems in {self.sent} "
                               f"requests, first: {self.problems[:3]}")


def crash_points():
    """The node-side crash points, read from the one list of them
    (`CRASH_POINTS` in storage/src/crash.rs); `backup_restore.*` run in
    `raftcart restore`, not in a node."""
    src = os.path.join(os.path.dirname(__file__), "..", "..", "storage", "src", "crash.rs")
    with open(src) as f:
        text = f.read()
    body = text[text.index("pub const CRASH_POINTS"):]
    body = body[: body.index("];")]
    return [p for p in re.findall(r'"([a-z_]+\.[a-z_]+)"', body)
            if not p.startswith("backup_restore.")]


class CrashPoint(Nemesis):
    """Arms a random crash point on a random running node (the binary is
    built with the `failpoints` feature): the node aborts when it next
    reaches that durable step. Heals by starting the node again; one that
    never reached the point is SIGKILLed and started, so nothing stays
    armed."""
    name = "crash-point"

    def start(self):
        running = self.cluster.running()
        self.node = self.rng.choice(running)
        self.point = self.rng.choice(crash_points())
        self.pid = self.cluster.procs[self.node].pid
        with open(self.cluster.admin_token) as f:
            token = f.read().strip()
        req = urllib.request.Request(f"{api(self.node)}/debug/crash-at/{self.point}",
                                     method="POST", data=b"",
                                     headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                armed = r.status == 200
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"arming {self.point} on node {self.node}: HTTP {e.code} "
                               f"{e.read()[:200]!r} (built without --features raftcart/failpoints?)")
        except (urllib.error.URLError, OSError) as e:
            armed = False
            self.error = str(e)
        self.armed = armed
        return f"arm {self.point} on node {self.node}" + ("" if armed else f" (unreachable: {self.error})")

    def stop(self):
        p = self.cluster.procs.get(self.node)
        crashed = p is None or p.pid != self.pid or p.poll() is not None
        if not crashed:
            # Not reached in the window: crash it now rather than leave
            # the point armed.
            self.cluster.kill(self.node)
        self.cluster.start(self.node)
        print(f"         crash-point: {self.point} on node {self.node} "
              + ("reached" if crashed else "not reached in the window: SIGKILLed"), flush=True)


class TransferLeader(Nemesis):
    """Moves the leadership on demand: to a random voter, or to the most
    caught-up one. Healing is nothing: the cluster stays whole."""
    name = "transfer-leader"

    def start(self):
        leader = self.cluster.leader()
        if leader is None:
            return "transfer-leader: no leader to move"
        args = ["transfer-leader", "--addr", api(leader)]
        if self.rng.random() < 0.5:
            args += ["--to", str(self.rng.choice(self.others(leader)))]
        ok, out = self.cluster.cli(*args)
        return f"transfer-leader from node {leader}: {out.strip()}"

    def stop(self):
        pass


NEMESES = {cls.name: cls for cls in (KillLeader, KillRandom, Pause, PartitionLeader,
                                      PartitionHalves, PartitionBridge, SlowNetwork,
                                      Membership, CrashAll, Hostile, CrashPoint,
                                      TransferLeader)}

HEALTHY_S = 2.0
FAULT_S = (3.0, 5.0)


def schedule(names, cluster, net, seed, clock, duration, windows, log):
    """Alternates healthy stretches and faults until `duration` is nearly
    up; with several names, picks one at random each time."""
    rng = random.Random(seed)
    end = clock() + duration
    while clock() + HEALTHY_S + FAULT_S[1] + 1.0 < end:
        time.sleep(HEALTHY_S)
        nemesis = NEMESES[rng.choice(names)](cluster, net, rng)
        start = clock()
        what = nemesis.start()
        log(f"{start:7.2f}s  {nemesis.name}: {what}")
        time.sleep(rng.uniform(*FAULT_S))
        nemesis.stop()
        stop = clock()
        log(f"{stop:7.2f}s  {nemesis.name}: healed")
        windows.append({"nemesis": nemesis.name, "what": what,
                        "start": round(start, 3), "end": round(stop, 3)})
    time.sleep(max(0.0, end - clock()))
