"""The checker must catch what it claims to: each test hands it a small
history with one known anomaly (or none) and expects exactly that verdict.

Run: cd jepsen && python3 -m unittest discover -s tests
"""

import unittest

from raftcart_jepsen import checker, linearizable

INIT = {
    "users": {"u": 10},
    "items": {"i": 5},
    "orders": {"o": {"user": "u", "cost": 2, "items": {"i": 2}}},
}


def op(f, args, invoke, complete, kind="ok", value=None, status=200):
    return {"process": 0, "node": 1, "f": f, "args": args, "invoke": invoke,
            "complete": None if kind == "info" else complete, "latency": 0.0,
            "type": kind, "status": status, "value": value}


def final(credit=10, stock=5, paid=False):
    return {"users": {"u": credit}, "items": {"i": stock}, "orders": {"o": paid}}


def verdict(history, fin):
    return checker.check(history, INIT, fin, {"1": True}, [], 10.0)


class Valid(unittest.TestCase):
    def test_a_clean_history_is_valid(self):
        h = [op("add_funds", {"user": "u", "amount": 3}, 0, 1),
             op("read_user", {"user": "u"}, 2, 3, value=13),
             op("checkout", {"order": "o"}, 4, 5, value={"already_paid": False}),
             op("checkout", {"order": "o"}, 6, 7, value={"already_paid": True}),
             op("read_user", {"user": "u"}, 8, 9, value=11),
             op("read_item", {"item": "i"}, 8, 9, value=3)]
        r = verdict(h, final(credit=11, stock=3, paid=True))
        self.assertTrue(r["valid"], r["errors"])

    def test_an_unknown_write_may_have_gone_either_way(self):
        h = [op("add_funds", {"user": "u", "amount": 3}, 0, None, kind="info"),
             op("read_user", {"user": "u"}, 2, 3, value=13)]
        self.assertTrue(verdict(h, final(credit=13))["valid"])
        h = [op("add_funds", {"user": "u", "amount": 3}, 0, None, kind="info"),
             op("read_user", {"user": "u"}, 2, 3, value=10)]
        self.assertTrue(verdict(h, final(credit=10))["valid"])

    def test_concurrent_operations_may_take_effect_in_either_order(self):
        h = [op("add_funds", {"user": "u", "amount": 3}, 0, 5),
             op("read_user", {"user": "u"}, 1, 2, value=10),
             op("read_user", {"user": "u"}, 3, 4, value=13)]
        self.assertTrue(verdict(h, final(credit=13))["valid"])


class Anomalies(unittest.TestCase):
    def test_lost_write(self):
        h = [op("add_funds", {"user": "u", "amount": 3}, 0, 1)]
        r = verdict(h, final(credit=10))
        self.assertFalse(r["valid"])
        self.assertTrue(any("user u: holds 10" in e for e in r["errors"]), r["errors"])

    def test_lost_checkout(self):
        h = [op("checkout", {"order": "o"}, 0, 1, value={"already_paid": False})]
        r = verdict(h, final(credit=8, stock=3, paid=False))
        self.assertFalse(r["valid"])
        self.assertTrue(any("not paid (lost write)" in e for e in r["errors"]), r["errors"])

    def test_refused_write_that_happened(self):
        h = [op("pay", {"user": "u", "amount": 4}, 0, 1, kind="fail", status=400)]
        r = verdict(h, final(credit=6))
        self.assertFalse(r["valid"])

    def test_double_charge(self):
        h = [op("checkout", {"order": "o"}, 0, 1, value={"already_paid": False}),
             op("checkout", {"order": "o"}, 2, 3, value={"already_paid": False})]
        r = verdict(h, final(credit=6, stock=1, paid=True))
        self.assertFalse(r["valid"])
        self.assertTrue(any("charged 2 times" in e for e in r["errors"]), r["errors"])

    def test_stale_read(self):
        h = [op("add_funds", {"user": "u", "amount": 3}, 0, 1),
             op("read_user", {"user": "u"}, 2, 3, value=10)]
        r = verdict(h, final(credit=13))
        self.assertFalse(r["valid"])
        self.assertIn("user u: reads and writes are not linearizable", r["errors"])

    def test_non_linearizable_interleaving(self):
        # Two reads, one after the other, see the write then not: each read
        # alone could be explained, together they cannot.
        h = [op("add_funds", {"user": "u", "amount": 3}, 0, 10),
             op("read_user", {"user": "u"}, 1, 2, value=13),
             op("read_user", {"user": "u"}, 3, 4, value=10)]
        r = verdict(h, final(credit=13))
        self.assertFalse(r["valid"])
        self.assertIn("user u: reads and writes are not linearizable", r["errors"])

    def test_replica_divergence(self):
        r = checker.check([], INIT, final(), {"1": True, "2": False}, [], 1.0)
        self.assertFalse(r["valid"])
        self.assertIn("node 2's copy differs from the leader's", r["errors"])

    def test_overdraft_is_not_linearizable(self):
        # Two payments of 6 from 10 both acknowledged.
        h = [op("pay", {"user": "u", "amount": 6}, 0, 1),
             op("pay", {"user": "u", "amount": 6}, 0, 1)]
        r = verdict(h, final(credit=-2))
        self.assertFalse(r["valid"])


def step(effect, value):
    return checker.register_step(effect, value)


class Search(unittest.TestCase):
    def test_unknown_ops_need_not_be_linearized(self):
        add = (0, None, ("add", 1))
        read = (1, 2, ("read", 0))
        self.assertTrue(linearizable.check([add, read], 0, step))

    def test_unknown_ops_may_land_long_after_their_call(self):
        add = (0, None, ("add", 1))
        reads = [(t, t + 1, ("read", 0)) for t in range(1, 50, 2)]
        late = (60, 61, ("read", 1))
        self.assertTrue(linearizable.check([add, *reads, late], 0, step))
        self.assertFalse(linearizable.check([add, *reads, late, (62, 63, ("read", 0))], 0, step))

    def test_interchangeable_unknown_ops_are_each_applied_at_most_once(self):
        adds = [(0, None, ("add", 2)) for _ in range(3)]
        self.assertTrue(linearizable.check([*adds, (1, 2, ("read", 6))], 0, step))
        self.assertFalse(linearizable.check([*adds, (1, 2, ("read", 8))], 0, step))

    def test_budget_gives_unknown_not_false(self):
        # Distinct unknown adds: every subset is a different state, and no
        # subset sum is -1, so the search can only run out.
        ops = [(0, None, ("add", 2 ** i)) for i in range(30)]
        ops.append((1, 2, ("read", -1)))
        self.assertIsNone(linearizable.check(ops, 0, step, budget=100))

    def test_a_long_valid_history_is_decided(self):
        # 4,000 operations from 10 overlapping clients, 2% of the writes
        # unknown (half of those applied, up to 10 s after their call), all
        # on one key: the size of the busiest key in a 10-minute mixed run,
        # with more unknown writes than such a run gives (0.3% of all ops).
        ops = simulated_history(seed=7, clients=10, count=4000, unknown=0.02)
        self.assertTrue(linearizable.check(ops, 100, step, budget=300_000))

    def test_one_stale_read_in_a_long_history_is_found(self):
        ops = simulated_history(seed=7, clients=10, count=4000, unknown=0.0)
        reads = [i for i, op in enumerate(ops) if op[2][0] == "read"]
        i = reads[len(reads) // 2]
        call, ret, (_, seen) = ops[i]
        ops[i] = (call, ret, ("read", seen + 1000))
        self.assertFalse(linearizable.check(ops, 100, step, budget=300_000))


def simulated_history(seed, clients, count, unknown):
    """A history of a linearizable register: each client's operations one
    after another, each taking effect at a random instant inside its
    interval; an unknown one (no return) takes effect later or never."""
    import random
    rng = random.Random(seed)
    events = []  # (linearization point, client op index)
    ops = []
    clock = [0.0] * clients
    for k in range(count):
        c = k % clients
        call = clock[c] + rng.random()
        ret = call + rng.random() * 3
        clock[c] = ret
        kind = rng.choice(["add", "take", "read", "read", "read"])
        amount = rng.randint(1, 5)
        is_unknown = kind != "read" and rng.random() < unknown
        if is_unknown:
            point = call + rng.random() * 10 if rng.random() < 0.5 else None
        else:
            point = call + rng.random() * (ret - call)
        ops.append([call, None if is_unknown else ret, kind, amount])
        if point is not None:
            events.append((point, k))
    value = 100
    for _, k in sorted(events):
        op = ops[k]
        if op[2] == "add":
            value += op[3]
        elif op[2] == "take":
            if value >= op[3]:
                value -= op[3]
            elif op[1] is not None:
                op[2] = "refused"
        else:
            op[3] = value
    out = []
    for call, ret, kind, amount in ops:
        if ret is None and kind == "take":
            kind = "maybe_take"
        out.append((call, ret, (kind, amount)))
    return out


class Availability(unittest.TestCase):
    def test_windows_and_outage(self):
        h = [op("add_funds", {"user": "u", "amount": 1}, 0.0, 0.5),
             op("add_funds", {"user": "u", "amount": 1}, 1.0, 1.1, kind="fail", status=None),
             op("add_funds", {"user": "u", "amount": 1}, 3.0, 3.5)]
        windows, outage = checker.availability(h, [{"nemesis": "x", "start": 0.8, "end": 3.2}], 4.0)
        self.assertEqual(windows[0]["ops"], 2)
        self.assertEqual(windows[0]["ok"], 1)
        self.assertEqual(outage["seconds"], 3.0)


if __name__ == "__main__":
    unittest.main()
