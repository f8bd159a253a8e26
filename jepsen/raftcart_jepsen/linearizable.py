"""Per-key linearizability: the Wing-Gong / Lowe search (as in Knossos and
Porcupine) over one key's history against a sequential model.

Each operation is (call, ret, step): `ret` is None for an operation whose
outcome is unknown (it may take effect at any time after its call, or
never); `step(value)` gives the values the key may hold after the
operation if it is linearized at `value`, or [] if it cannot be.
A history is linearizable if some order of all completed operations (and
any of the unknown ones) respects real time (an operation returning before
another is called comes first) and every step is allowed.
"""

import math

INF = math.inf


def check(ops, initial, budget=2_000_000):
    """True (linearizable), False (not), or None (search budget spent)."""
    n = len(ops)
    calls = [op[0] for op in ops]
    rets = [INF if op[1] is None else op[1] for op in ops]
    required = 0
    for i, op in enumerate(ops):
        if op[1] is not None:
            required |= 1 << i
    order = sorted(range(n), key=lambda i: calls[i])

    def first_pending(done, start):
        while start < n and done >> order[start] & 1:
            start += 1
        return start

    seen = set()
    # (linearized ops as a bit mask, value, position in call order of the
    # first op not yet linearized)
    stack = [(0, initial, 0)]
    explored = 0
    while stack:
        done, value, start = stack.pop()
        if done & required == required:
            return True
        if (done, value) in seen:
            continue
        seen.add((done, value))
        explored += 1
        if explored > budget:
            return None
        # An op may go next only if no pending op returned before its call.
        # Returns are never before calls, so scanning in call order can stop
        # once calls pass the earliest pending return.
        horizon = INF
        candidates = []
        for pos in range(start, n):
            i = order[pos]
            if calls[i] > horizon:
                break
            if done >> i & 1:
                continue
            candidates.append(i)
            horizon = min(horizon, rets[i])
        for i in candidates:
            if calls[i] > horizon:
                continue
            after_done = done | 1 << i
            next_start = first_pending(after_done, start)
            for after in ops[i][2](value):
                stack.append((after_done, after, next_start))
    return False
