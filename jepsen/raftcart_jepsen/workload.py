"""The workload: concurrent clients issuing checkouts, add_funds, pay, stock
add/subtract and reads against random nodes, each operation recorded with
its invocation, completion and outcome:

- ok: the node said it happened (2xx);
- fail: it certainly did not happen (a 4xx refusal, a read that failed, or
  a connection that was never made);
- info: unknown (timeout, connection cut after sending, 5xx on a write).
"""

import http.client
import json
import random
import threading
import time

from .cluster import API_PORT
from .net import ip_of

USERS = 20
CREDIT = 20
ITEMS = 10
STOCK = 100
ORDERS = 400
TIMEOUT_S = 6.0

WRITES = {"checkout", "add_funds", "pay", "stock_add", "stock_sub"}

MIX = [("checkout", 35), ("read_user", 12), ("read_item", 12), ("read_order", 6),
       ("add_funds", 12), ("pay", 8), ("stock_add", 7), ("stock_sub", 8)]


def request(node, method, path, timeout=TIMEOUT_S):
    """(status or None, body dict or None, sent: bool, error str or None)."""
    conn = http.client.HTTPConnection(ip_of(node), API_PORT, timeout=timeout)
    try:
        try:
            conn.connect()
        except OSError as e:
            return None, None, False, f"connect: {e}"
        try:
            conn.request(method, path)
            r = conn.getresponse()
            body = r.read()
        except OSError as e:
            return None, None, True, f"{type(e).__name__}: {e}"
        try:
            return r.status, json.loads(body), True, None
        except ValueError:
            return r.status, {"raw": body.decode(errors="replace")}, True, None
    finally:
        conn.close()


def populate(node):
    for path in (f"/payment/batch_init/{USERS}/{CREDIT}",
                 f"/stock/batch_init/{ITEMS}/{STOCK}/1",
                 f"/orders/batch_init/{ORDERS}/{ITEMS}/{USERS}/1"):
        status, body, _, err = request(node, "POST", path, timeout=30)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {body} {err}")
    orders = {}
    for o in range(ORDERS):
        status, body, _, err = request(node, "GET", f"/orders/find/{o}", timeout=30)
        if status != 200:
            raise RuntimeError(f"order {o}: {status} {body} {err}")
        lines = {}
        for item, qty in body["items"]:
            lines[item] = lines.get(item, 0) + qty
        orders[str(o)] = {"user": body["user_id"], "cost": body["total_cost"], "items": lines}
    return {
        "users": {str(u): CREDIT for u in range(USERS)},
        "items": {str(i): STOCK for i in range(ITEMS)},
        "orders": orders,
    }


def make_op(rng):
    f = rng.choices([m[0] for m in MIX], weights=[m[1] for m in MIX])[0]
    user, item, order = str(rng.randrange(USERS)), str(rng.randrange(ITEMS)), str(rng.randrange(ORDERS))
    amount = rng.randint(1, 5)
    return {
        "checkout": lambda: (f, {"order": order}, "POST", f"/orders/checkout/{order}"),
        "add_funds": lambda: (f, {"user": user, "amount": amount}, "POST",
                              f"/payment/add_funds/{user}/{amount}"),
        "pay": lambda: (f, {"user": user, "amount": amount * 2}, "POST",
                        f"/payment/pay/{user}/{amount * 2}"),
        "stock_add": lambda: (f, {"item": item, "amount": amount}, "POST",
                              f"/stock/add/{item}/{amount}"),
        "stock_sub": lambda: (f, {"item": item, "amount": amount * 2}, "POST",
                              f"/stock/subtract/{item}/{amount * 2}"),
        "read_user": lambda: (f, {"user": user}, "GET", f"/payment/find_user/{user}"),
        "read_item": lambda: (f, {"item": item}, "GET", f"/stock/find/{item}"),
        "read_order": lambda: (f, {"order": order}, "GET", f"/orders/find/{order}"),
    }[f]()


def outcome(f, status, sent):
    if status is not None and 200 <= status < 300:
        return "ok"
    if status is not None and 400 <= status < 500:
        return "fail"
    if f not in WRITES or not sent:
        return "fail"
    return "info"


def value_of(f, body):
    if not body:
        return None
    if f == "read_user":
        return body.get("credit")
    if f == "read_item":
        return body.get("stock")
    if f == "read_order":
        return body.get("paid")
    if f == "checkout":
        return {"already_paid": body.get("already_paid")}
    return None


class Workload:
    def __init__(self, nodes, clients, seed, clock):
        self.nodes = list(nodes)
        self.clients = clients
        self.seed = seed
        self.clock = clock
        self.history = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def client(self, process):
        rng = random.Random(self.seed * 1000 + process)
        while not self.stop.is_set():
            f, args, method, path = make_op(rng)
            node = rng.choice(self.nodes)
            invoke = self.clock()
            status, body, sent, err = request(node, method, path)
            complete = self.clock()
            kind = outcome(f, status, sent)
            op = {"process": process, "node": node, "f": f, "args": args,
                  "invoke": invoke, "complete": complete if kind != "info" else None,
                  "latency": complete - invoke, "type": kind, "status": status,
                  "value": value_of(f, body) if kind == "ok" else None}
            if err or kind != "ok":
                op["error"] = err or (body or {}).get("error")
            with self.lock:
                self.history.append(op)
            time.sleep(0.01)

    def run(self, duration, during=None):
        threads = [threading.Thread(target=self.client, args=(p,), daemon=True)
                   for p in range(self.clients)]
        for t in threads:
            t.start()
        try:
            if during:
                during(duration)
            else:
                time.sleep(duration)
        finally:
            self.stop.set()
            for t in threads:
                t.join(TIMEOUT_S + 5)
        return sorted(self.history, key=lambda o: o["invoke"])


def final_state(leader, nodes, init):
    """The state as the leader serves it (linearizable), and whether every
    node's local copy (stale reads, after convergence) is identical."""
    def read(node, stale):
        q = "?stale=true" if stale else ""
        state = {"users": {}, "items": {}, "orders": {}}
        for u in init["users"]:
            s, b, _, e = request(node, "GET", f"/payment/find_user/{u}{q}")
            state["users"][u] = b["credit"] if s == 200 else f"error {s} {e}"
        for i in init["items"]:
            s, b, _, e = request(node, "GET", f"/stock/find/{i}{q}")
            state["items"][i] = b["stock"] if s == 200 else f"error {s} {e}"
        for o in init["orders"]:
            s, b, _, e = request(node, "GET", f"/orders/find/{o}{q}")
            state["orders"][o] = b["paid"] if s == 200 else f"error {s} {e}"
        return state

    # A write whose client gave up may still be retried by the node that
    # received it (for up to its leader wait) and commit after the run: the
    # copies are compared with a final state that held still while they
    # were read, i.e. the same before and after.
    for _ in range(10):
        final = read(leader, stale=False)
        copies = {str(n): read(n, stale=True) for n in nodes}
        if read(leader, stale=False) == final:
            break
        time.sleep(1.0)
    replicas = {n: copy == final for n, copy in copies.items()}
    return final, replicas
