"""Loads the stress data set with the course's batch_init calls and prints
how long each took. Usage: populate.py HOST [USERS ITEMS ORDERS]."""

import sys
import time
import urllib.request


def post(url):
    req = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        if r.status != 200:
            raise SystemExit(f"{url}: HTTP {r.status}")


def main():
    host = sys.argv[1].rstrip("/")
    users, items, orders = (int(a) for a in (sys.argv[2:5] or ["100000"] * 3))
    calls = [
        f"/payment/batch_init/{users}/1000000",
        f"/stock/batch_init/{items}/1000000/1",
        f"/orders/batch_init/{orders}/{items}/{users}/1",
    ]
    total = 0.0
    for path in calls:
        started = time.monotonic()
        post(host + path)
        took = time.monotonic() - started
        total += took
        print(f"populate: {path} {took:.2f} s")
    print(f"populate: all three calls {total:.2f} s")


if __name__ == "__main__":
    main()
