"""raftcart nodes, each in its own network namespace, that the nemeses can
kill, pause, restart, wipe and re-add."""

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request

from .net import in_ns, ip_of

API_PORT = 8000
RAFT_PORT = 9000


def api(node):
    return f"http://{ip_of(node)}:{API_PORT}"


def get_json(url, timeout=1.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Cluster:
    def __init__(self, binary, workdir, nodes, leader_wait_ms=3000):
        self.binary = binary
        self.workdir = workdir
        self.nodes = list(nodes)
        self.leader_wait_ms = leader_wait_ms
        self.procs = {}
        self.peers = ",".join(
            f"{n}@{ip_of(n)}:{API_PORT}@{ip_of(n)}:{RAFT_PORT}" for n in self.nodes)
        # The cluster's secrets, as `raftcart up` makes them.
        self.peer_key = self._secret("peer.key")
        self.admin_token = self._secret("admin.token")

    def _secret(self, name):
        path = os.path.join(self.workdir, name)
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
        return path

    def data_dir(self, node):
        return os.path.join(self.workdir, f"n{node}")

    def start(self, node, init=False, join=False):
        """Starts node `node`; `init` forms the cluster (first start only);
        `join` starts it empty, outside the membership, to be added."""
        log = open(os.path.join(self.workdir, f"n{node}.log"), "a")
        cmd = [self.binary, "node", "--id", str(node),
               "--api", f"{ip_of(node)}:{API_PORT}",
               "--raft", f"{ip_of(node)}:{RAFT_PORT}",
               "--data-dir", self.data_dir(node),
               "--peer-key-file", self.peer_key,
               "--admin-token-file", self.admin_token,
               "--leader-wait-ms", str(self.leader_wait_ms),
               # Far below the default (100,000), so that snapshots, log
               # purges and snapshot installs happen during the faults.
               "--snapshot-every", "2000"]
        if not join:
            cmd += ["--peer", self.peers]
        if init:
            cmd.append("--init")
        self.procs[node] = subprocess.Popen(in_ns(node, *cmd), stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL)

    def start_all(self):
        for n in self.nodes:
            self.start(n, init=(n == self.nodes[0]))
        return self.wait_for_leader(30)

    def signal(self, node, sig):
        p = self.procs.get(node)
        if p is not None and p.poll() is None:
            # `ip netns exec` execs the node: this pid is the node's.
            os.kill(p.pid, sig)

    def kill(self, node):
        self.signal(node, signal.SIGKILL)
        p = self.procs.pop(node, None)
        if p is not None:
            p.wait()

    def pause(self, node):
        self.signal(node, signal.SIGSTOP)

    def resume(self, node):
        self.signal(node, signal.SIGCONT)

    def wipe(self, node):
        shutil.rmtree(self.data_dir(node), ignore_errors=True)

    def running(self):
        return [n for n, p in self.procs.items() if p.poll() is None]

    def status(self, node):
        try:
            return get_json(f"{api(node)}/cluster/status", timeout=0.5)
        except Exception:
            return None

    def leader(self):
        """The leader, if it agrees it leads."""
        for n in self.nodes:
            s = self.status(n)
            if s and s.get("leader_id") is not None:
                ls = self.status(s["leader_id"])
                if ls and ls.get("leader_id") == s["leader_id"]:
                    return s["leader_id"]
        return None

    def wait_for_leader(self, within):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            l = self.leader()
            if l is not None:
                return l
            time.sleep(0.1)
        return None

    def wait_converged(self, within):
        """Until every member has applied the same index as the leader."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            l = self.leader()
            if l is not None:
                members = [m["id"] for m in self.status(l)["members"]]
                applied = [(self.status(n) or {}).get("last_applied") for n in members]
                if None not in applied and len(set(applied)) == 1:
                    return True
            time.sleep(0.2)
        return False

    def cli(self, *args, timeout=30):
        env = dict(os.environ, RAFTCART_ADMIN_TOKEN_FILE=self.admin_token)
        r = subprocess.run([self.binary, "cluster", *args], capture_output=True, text=True,
                           timeout=timeout, env=env)
        return r.returncode == 0, (r.stdout + r.stderr).strip()

    def stop_all(self):
        for n in list(self.procs):
            self.resume(n)
            self.kill(n)
