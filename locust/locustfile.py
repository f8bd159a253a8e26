"""Locust scenarios for raftcart (and any implementation of the course's
API): `StressUser` is the course's stress test, `MixedUser` a shop's mix.

Both pace each user at one request per second, as the course does, so the
number of users is the offered load in requests/s. Every 4xx/5xx counts as
a failure (Locust's default for non-2xx).

Pacing: each user keeps a fixed once-a-second schedule that starts at a
random point of its first second (`pacing.steady_pacing`). Locust's own
`constant_pacing` keeps users in step instead: Locust starts them in
clumps (spawn-rate users at a time), each late wake-up moves a user's
phase into the clump ahead of it, and within seconds all N users fire in
the same instant. One Locust process then needs ~0.2 s of CPU just to send
a burst of 1000 requests, and that wait is inside every latency it
reports (1000 users on a 0.1 ms endpoint: median 190 ms). RAFTCART_LOCKSTEP=1
(`run.sh --lockstep`) brings Locust's pacing back, for comparison.

Users are FastHttpUsers (geventhttpclient), not HttpUsers (requests): the
same requests for a fraction of the client CPU, which matters when Locust
shares two cores with the three nodes it measures.

The data set comes from populate.py (batch_init): users and items "0"..,
orders "0".."99999" whose users hold plenty of credit.
"""

import os
import random
import time

from locust import FastHttpUser, constant_pacing, task
from pacing import steady_pacing

ORDERS = int(os.environ.get("RAFTCART_ORDERS", "100000"))
ITEMS = int(os.environ.get("RAFTCART_ITEMS", "100000"))
LOCKSTEP = os.environ.get("RAFTCART_LOCKSTEP", "0") == "1"
PACING = constant_pacing(1) if LOCKSTEP else steady_pacing(1)


class PacedUser(FastHttpUser):
    """One request a second on the chosen pacing, from the first request
    on: Locust runs a user's first task the moment it is spawned, which
    would send each spawn clump at once."""

    abstract = True
    wait_time = PACING

    def on_start(self):
        if not LOCKSTEP:
            time.sleep(self.wait_time())


class StressUser(PacedUser):
    """The course's stress scenario: check out a random order of the
    batch_init set. A second checkout of a paid order succeeds without
    charging again."""

    @task
    def checkout(self):
        order = random.randrange(ORDERS)
        self.client.post(f"/orders/checkout/{order}", name="/orders/checkout/[order_id]")


class MixedUser(PacedUser):
    """A shopper: an account with funds, then orders of a few items,
    checkouts and lookups."""

    def on_start(self):
        super().on_start()
        self.user_id = None
        self.orders = []
        r = self.client.post("/payment/create_user")
        if r.status_code == 200:
            self.user_id = r.json()["user_id"]
            self.client.post(f"/payment/add_funds/{self.user_id}/1000000",
                             name="/payment/add_funds/[user_id]/[amount]")

    @task(3)
    def buy(self):
        if self.user_id is None:
            return
        r = self.client.post(f"/orders/create/{self.user_id}", name="/orders/create/[user_id]")
        if r.status_code != 200:
            return
        order = r.json()["order_id"]
        for _ in range(random.randint(1, 3)):
            item = random.randrange(ITEMS)
            self.client.post(f"/orders/addItem/{order}/{item}/{random.randint(1, 2)}",
                             name="/orders/addItem/[order_id]/[item_id]/[quantity]")
        self.client.post(f"/orders/checkout/{order}", name="/orders/checkout/[order_id]")
        self.orders.append(order)

    @task(2)
    def find_order(self):
        if self.orders:
            self.client.get(f"/orders/find/{random.choice(self.orders)}",
                            name="/orders/find/[order_id]")

    @task(1)
    def find_user(self):
        if self.user_id is not None:
            self.client.get(f"/payment/find_user/{self.user_id}",
                            name="/payment/find_user/[user_id]")

    @task(1)
    def find_item(self):
        self.client.get(f"/stock/find/{random.randrange(ITEMS)}", name="/stock/find/[item_id]")

    @task(1)
    def add_funds(self):
        if self.user_id is not None:
            self.client.post(f"/payment/add_funds/{self.user_id}/10",
                             name="/payment/add_funds/[user_id]/[amount]")


class StatusUser(PacedUser):
    """Measures Locust itself: GET /cluster/status costs a node about
    0.1 ms, so what Locust reports beyond that is the client's own delay
    (`run.sh --scenario status --no-populate --host http://127.0.0.1:8002`)."""

    @task
    def status(self):
        self.client.get("/cluster/status")
