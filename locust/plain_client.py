"""The stress pattern without Locust: N gevent users, each checking out (or
GETting) once a second on a fixed schedule, with geventhttpclient (what
Locust's FastHttpUser uses). It shows how much of a Locust figure is the
server: run it with the Locust venv's python, e.g.

    ~/.cache/raftcart-locust-venv/bin/python locust/plain_client.py \\
        --users 1000 --time 20 --path /cluster/status --host http://127.0.0.1:8002
    ... --clumps 200    # start users 200 at a time, once a second, as Locust does

Prints the request count and p50/p90/p99/max in milliseconds.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from geventhttpclient import HTTPClient  # noqa: E402
from geventhttpclient.url import URL  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="http://127.0.0.1:8000")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--time", type=float, default=20.0)
    p.add_argument("--path", default=None, help="GET this path (default: POST a random checkout)")
    p.add_argument("--clumps", type=int, default=0, help="start users this many at a time, 1 s apart")
    a = p.parse_args()
    latencies = []
    start = time.time() + 1

    def user(i):
        client = HTTPClient.from_url(URL(a.host + "/"), concurrency=1, network_timeout=30)
        due = start + (i // a.clumps if a.clumps else i / a.users)
        while due < start + a.time:
            gevent.sleep(max(0.0, due - time.time()))
            t0 = time.perf_counter()
            if a.path:
                r = client.get(a.path)
            else:
                r = client.post(f"/orders/checkout/{random.randrange(100000)}", body=b"")
            r.read()
            latencies.append((time.perf_counter() - t0) * 1000)
            due += 1.0
            while due < time.time():
                due += 1.0

    gevent.joinall([gevent.spawn(user, i) for i in range(a.users)])
    latencies.sort()
    n = len(latencies)
    print(f"requests {n} p50 {latencies[n // 2]:.1f} p90 {latencies[int(n * .9)]:.1f} "
          f"p99 {latencies[int(n * .99)]:.1f} max {latencies[-1]:.1f} (ms)")


if __name__ == "__main__":
    main()
