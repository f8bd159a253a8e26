"""Judges a history against the final state. Pure: no I/O.

The history is a list of operations as the workload records them; `init`
is the populated data (users' credit, items' stock, each order's user,
cost and item quantities); `final` the state read after the faults healed.
"""

from collections import defaultdict

from . import linearizable

MAX_INFO_SUBSET = 22  # beyond this, conservation with unknown ops is skipped


def subset_sums(deltas):
    sums = {0}
    for d in deltas:
        sums |= {s + d for s in sums}
    return sums


def effects(history, init):
    """Per user / item: (known delta, unknown deltas) of direct writes."""
    known = {"users": defaultdict(int), "items": defaultdict(int)}
    unknown = {"users": defaultdict(list), "items": defaultdict(list)}
    signs = {"add_funds": ("users", "user", 1), "pay": ("users", "user", -1),
             "stock_add": ("items", "item", 1), "stock_sub": ("items", "item", -1)}
    for op in history:
        if op["f"] not in signs or op["type"] == "fail":
            continue
        kind, field, sign = signs[op["f"]]
        key, delta = op["args"][field], sign * op["args"]["amount"]
        if op["type"] == "ok":
            known[kind][key] += delta
        else:
            unknown[kind][key].append(delta)
    return known, unknown


def check_orders(history, init, final):
    errors = []
    by_order = defaultdict(list)
    for op in history:
        if op["f"] == "checkout":
            by_order[op["args"]["order"]].append(op)
    for order, ops in by_order.items():
        paid = final["orders"].get(order)
        ok = [op for op in ops if op["type"] == "ok"]
        if ok and paid is not True:
            errors.append(f"order {order}: checkout acknowledged but the order is not paid (lost write)")
        if paid is True and all(op["type"] == "fail" for op in ops):
            errors.append(f"order {order}: every checkout was refused but the order is paid")
        charged = [op for op in ok if not (op["value"] or {}).get("already_paid")]
        if len(charged) > 1:
            errors.append(f"order {order}: charged {len(charged)} times")
    for order, paid in final["orders"].items():
        if paid is True and order not in by_order:
            errors.append(f"order {order}: paid without any checkout")
    return errors


def check_conservation(history, init, final):
    """Credit and stock, user by user and item by item: initial + direct
    writes - what the paid orders took, allowing exactly the unknown writes
    to have gone either way."""
    errors, skipped = [], []
    known, unknown = effects(history, init)
    spent, sold = defaultdict(int), defaultdict(int)
    for order, paid in final["orders"].items():
        if paid is True:
            o = init["orders"][order]
            spent[o["user"]] += o["cost"]
            for item, qty in o["items"].items():
                sold[item] += qty
    for kind, taken in (("users", spent), ("items", sold)):
        for key, start in init[kind].items():
            got = final[kind].get(key)
            if not isinstance(got, int):
                errors.append(f"{kind[:-1]} {key}: final value unreadable ({got})")
                continue
            expected = start + known[kind][key] - taken[key]
            maybe = unknown[kind][key]
            if len(maybe) > MAX_INFO_SUBSET:
                skipped.append(f"{kind[:-1]} {key}")
                continue
            if got - expected not in subset_sums(maybe):
                errors.append(
                    f"{kind[:-1]} {key}: holds {got}, but the acknowledged writes and paid "
                    f"orders imply {expected} (unknown writes: {maybe})")
    return errors, skipped


def register_step(effect, value):
    """The sequential model of a user's credit or an item's stock."""
    kind, n = effect
    if kind == "add":
        return [value + n]
    if kind == "take":  # acknowledged: there was enough
        return [value - n] if value >= n else []
    if kind == "refused":  # refused for lack of funds or stock
        return [value] if value < n else []
    if kind == "maybe_take":  # unknown outcome: taken if there was enough
        return [value - n] if value >= n else [value]
    if kind == "read":
        return [value] if value == n else []
    raise ValueError(f"unknown effect {effect}")


def key_histories(history, init):
    """Each user's credit and each item's stock as a single-value register
    with conditional decrements: (call, ret, effect) per operation, `ret`
    None where the outcome is unknown."""
    keys = defaultdict(list)
    for op in history:
        f, t, a = op["f"], op["type"], op["args"]
        span = (op["invoke"], op["complete"])
        if f in ("read_user", "read_item"):
            if t == "ok":
                key = ("users", a["user"]) if f == "read_user" else ("items", a["item"])
                keys[key].append((*span, ("read", op["value"])))
        elif f in ("add_funds", "stock_add"):
            if t != "fail":
                key = ("users", a["user"]) if f == "add_funds" else ("items", a["item"])
                keys[key].append((*span, ("add", a["amount"])))
        elif f in ("pay", "stock_sub"):
            if t == "fail" and op["status"] != 400:
                continue
            key = ("users", a["user"]) if f == "pay" else ("items", a["item"])
            kind = {"ok": "take", "fail": "refused", "info": "maybe_take"}[t]
            keys[key].append((*span, (kind, a["amount"])))
        elif f == "checkout":
            o = init["orders"][a["order"]]
            # A checkout refused on one key may have had enough on another:
            # per key, an unknown checkout either took or did nothing.
            if t == "ok" and not (op["value"] or {}).get("already_paid"):
                kind = "take"
            elif t == "info":
                kind = "maybe_take"
            else:
                continue
            keys[("users", o["user"])].append((*span, (kind, o["cost"])))
            for item, qty in o["items"].items():
                keys[("items", item)].append((*span, (kind, qty)))
    return keys


def check_linearizable(history, init):
    errors, unknown = [], []
    for (kind, key), ops in sorted(key_histories(history, init).items()):
        result = linearizable.check(ops, init[kind][key], register_step)
        if result is False:
            errors.append(f"{kind[:-1]} {key}: reads and writes are not linearizable")
        elif result is None:
            unknown.append(f"{kind[:-1]} {key}")
    return errors, unknown


def availability(history, windows, end):
    """Per fault window: ops invoked in it and the share that succeeded;
    and the longest stretch without a successful write."""
    out = []
    for w in windows:
        ops = [op for op in history if w["start"] <= op["invoke"] < w["end"]]
        ok = sum(op["type"] == "ok" for op in ops)
        out.append({**w, "ops": len(ops), "ok": ok,
                    "ok_fraction": round(ok / len(ops), 3) if ops else None})
    acks = sorted(op["complete"] for op in history
                  if op["type"] == "ok" and op["f"] in ("checkout", "add_funds", "pay",
                                                         "stock_add", "stock_sub"))
    points = [0.0, *acks, end]
    gaps = [(b - a, a) for a, b in zip(points, points[1:])]
    longest, at = max(gaps) if gaps else (0.0, 0.0)
    return out, {"seconds": round(longest, 3), "from": round(at, 3)}


def check(history, init, final, replicas, windows, end):
    """The verdict. Without a final state (`final` None), only what the
    history alone shows: counts, linearizability, availability."""
    errors, cons_skipped = [], []
    if final is not None:
        errors += check_orders(history, init, final)
        cons_errors, cons_skipped = check_conservation(history, init, final)
        errors += cons_errors
    lin_errors, lin_unknown = check_linearizable(history, init)
    errors += lin_errors
    errors += [f"node {n}'s copy differs from the leader's" for n, same in replicas.items()
               if not same]
    windows, outage = availability(history, windows, end)
    counts = defaultdict(lambda: defaultdict(int))
    for op in history:
        counts[op["f"]][op["type"]] += 1
    return {
        "valid": not errors,
        "errors": errors,
        "not_checked": {"conservation": cons_skipped, "linearizability": lin_unknown},
        "ops": len(history),
        "counts": {f: dict(c) for f, c in sorted(counts.items())},
        "windows": windows,
        "longest_write_outage": outage,
    }
