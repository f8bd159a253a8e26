"""The compose deployment, tested for real: up, the API through :8000, the
leader's container killed, then the next leader cut off the network, each
time the service answering and nothing acknowledged lost, the faulted node
catching up once back; then down -v.

Run by deploy/test.sh (which builds the image first). Every wait is bounded.
"""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

PROJECT = "raftcart-test"


def compose_command():
    """`docker compose` (the plugin) where installed, else the standalone
    `docker-compose` (Debian's package)."""
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True)
    return ["docker", "compose"] if plugin.returncode == 0 else ["docker-compose"]


COMPOSE = compose_command() + ["-p", PROJECT, "-f", "deploy/docker-compose.yml"]
GATEWAY = "http://127.0.0.1:8000"
NETWORK = f"{PROJECT}_default"


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {r.stdout}{r.stderr}")
    return r.stdout.strip()


def call(method, url, timeout=10):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)


def must(method, path):
    status, body = call(method, GATEWAY + path)
    if status != 200:
        raise SystemExit(f"{method} {path}: {status} {body}")
    return body


def wait(what, within, probe):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out after {within} s waiting for {what}")


def container(node):
    return sh("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}",
              "--filter", f"label=com.docker.compose.service=node{node}")


def node_url(node):
    ip = sh("docker", "inspect", "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container(node)).split()
    return f"http://{ip[0]}:8000" if ip else None


def status(node):
    url = node_url(node)
    if url is None:
        return None
    code, body = call("GET", url + "/cluster/status", timeout=2)
    return body if code == 200 else None


def leader():
    code, body = call("GET", GATEWAY + "/cluster/status", timeout=2)
    if code != 200 or body.get("leader_id") is None:
        return None
    lead = status(body["leader_id"])
    return body["leader_id"] if lead and lead.get("leader_id") == body["leader_id"] else None


class Ledger:
    """Funds added one acknowledged call at a time: the user's credit must
    equal the number of acknowledged calls, whatever failed over."""

    def __init__(self):
        self.user = must("POST", "/payment/create_user")["user_id"]
        self.acked = 0
        self.failed = 0

    def add(self, n, during=None):
        acked = 0
        for _ in range(n):
            status, _ = call("POST", f"{GATEWAY}/payment/add_funds/{self.user}/1")
            if status == 200:
                acked += 1
        self.acked += acked
        self.failed += n - acked
        if during is not None:
            # The gateway and the nodes retry across a failover for up to
            # the leader wait: the service must keep answering.
            print(f"  {during}: {acked} of {n} writes acknowledged")
            if acked < n * 0.8:
                raise SystemExit(f"{during}: only {acked} of {n} writes acknowledged")

    def check(self, when):
        credit = must("GET", f"/payment/find_user/{self.user}")["credit"]
        # A failed call may still have applied (its answer was lost), never
        # the other way round.
        if not self.acked <= credit <= self.acked + self.failed:
            raise SystemExit(f"{when}: credit {credit}, acknowledged {self.acked}, "
                             f"failed {self.failed}: an acknowledged write was lost")
        print(f"  {when}: credit {credit} = {self.acked} acknowledged "
              f"(+{credit - self.acked} of {self.failed} unanswered)")


def caught_up(node):
    def probe():
        lead = leader()
        mine, theirs = status(node), lead and status(lead)
        return (mine and theirs and mine.get("last_applied") is not None
                and mine["last_applied"] >= theirs["last_applied"])
    return probe


def api_checks():
    must("POST", "/payment/batch_init/10/100")
    must("POST", "/stock/batch_init/10/100/1")
    user = must("POST", "/payment/create_user")["user_id"]
    must("POST", f"/payment/add_funds/{user}/10")
    item = must("POST", "/stock/item/create/3")["item_id"]
    must("POST", f"/stock/add/{item}/5")
    order = must("POST", f"/orders/create/{user}")["order_id"]
    must("POST", f"/orders/addItem/{order}/{item}/2")
    must("POST", f"/orders/checkout/{order}")
    found = must("GET", f"/orders/find/{order}")
    assert found["paid"] and found["total_cost"] == 6, found
    assert must("GET", f"/payment/find_user/{user}")["credit"] == 4
    assert must("GET", f"/stock/find/{item}")["stock"] == 3
    status, body = call("POST", f"{GATEWAY}/orders/checkout/no-such-order")
    assert status == 404 and "error" in body, (status, body)
    print("  API checks through :8000 passed")


def main():
    sh(*COMPOSE, "down", "-v", check=False)
    try:
        sh(*COMPOSE, "up", "-d")
        first = wait("a leader", 60, leader)
        print(f"compose up: leader node {first}")
        api_checks()
        ledger = Ledger()
        ledger.add(20)

        print(f"docker kill the leader (node {first})")
        sh("docker", "kill", container(first))
        ledger.add(30, during=f"node {first} killed")
        # Docker may restart the killed container by itself (restart
        # policy), and it may even win the next election: either is fine.
        second = wait("a leader", 30, leader)
        ledger.check(f"after killing node {first}, node {second} leads")
        sh("docker", "start", container(first))
        wait(f"node {first} to catch up", 60, caught_up(first))
        print(f"  node {first} restarted and caught up")

        print(f"docker network disconnect the leader (node {second})")
        sh("docker", "network", "disconnect", NETWORK, container(second))
        ledger.add(30, during=f"node {second} disconnected")
        third = wait("a leader other than the cut-off node", 30,
                     lambda: (lead := leader()) != second and lead)
        ledger.check(f"with node {second} cut off, node {third} leads")
        sh("docker", "network", "connect", "--alias", f"node{second}", NETWORK, container(second))
        wait(f"node {second} to catch up", 60, caught_up(second))
        print(f"  node {second} reconnected and caught up")
        ledger.add(10)
        ledger.check("at the end")
        failed_share = ledger.failed / (ledger.acked + ledger.failed)
        print(f"compose test passed: {ledger.acked} writes acknowledged, "
              f"{ledger.failed} unanswered ({failed_share:.0%}) across both faults")
    finally:
        sh(*COMPOSE, "down", "-v", check=False)


if __name__ == "__main__":
    sys.exit(main())
