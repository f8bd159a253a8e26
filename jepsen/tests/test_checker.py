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


class Search(unittest.TestCase):
    def test_unknown_ops_need_not_be_linearized(self):
        add = (0, None, lambda v: [v + 1])
        read = (1, 2, lambda v: [v] if v == 0 else [])
        self.assertTrue(linearizable.check([add, read], 0))

    def test_budget_gives_unknown_not_false(self):
        ops = [(0, None, lambda v: [v + 1, v]) for _ in range(30)]
        ops.append((0, 1, lambda v: [] if v >= 0 else [v]))
        self.assertIsNone(linearizable.check(ops, 0, budget=100))


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
