"""Per-key linearizability: the Wing-Gong / Lowe search (as in Knossos and
Porcupine) over one key's history against a sequential model.

Each operation is (call, ret, effect): `ret` is None for an operation whose
outcome is unknown (it may take effect at any time after its call, or
never); `effect` is a hashable description that `step(effect, value)` turns
into the values the key may hold after the operation if it is linearized at
`value` ([] if it cannot be). A history is linearizable if some order of
all completed operations (and any of the unknown ones) respects real time
(an operation returning before another is called comes first) and every
step is allowed.

Three reductions keep long histories (a 10-minute run, thousands of
operations and dozens of unknown ones per key) tractable; each keeps the
verdict exact:

- A completed operation that may go next and leaves the value unchanged (a
  read that matches, a refusal that is allowed) is linearized at once, not
  branched on: going first only frees the operations behind it.
- An unknown operation is only ever linearized where it changes the value:
  consuming it otherwise leaves the same value with fewer choices.
- Unknown operations with the same effect are interchangeable once called,
  so they are linearized in call order: the state records how many of each
  effect have happened, not which. A state is skipped when one with the
  same completed operations and value, and no more unknown ones used, was
  already reached: whatever it leads to, that one leads to as well.
"""

import math
from collections import defaultdict

INF = math.inf


def check(ops, initial, step, budget=3_000_000):
    """True (linearizable), False (not), or None (search budget spent)."""
    done_ops = sorted((op for op in ops if op[1] is not None), key=lambda op: op[0])
    calls = [op[0] for op in done_ops]
    rets = [op[1] for op in done_ops]
    effects = [op[2] for op in done_ops]
    n = len(done_ops)
    unknown = defaultdict(list)
    for call, _, effect in sorted((op for op in ops if op[1] is None), key=lambda op: op[0]):
        unknown[effect].append(call)
    kinds = list(unknown)
    unknown_calls = [unknown[k] for k in kinds]

    def mark(start, rel, pos):
        # `rel` holds which completed ops from `start` on are linearized;
        # every one before `start` is.
        rel |= 1 << (pos - start)
        while rel & 1:
            rel >>= 1
            start += 1
        return start, rel

    def candidates(start, rel):
        """Completed ops that may go next, and the time before which an
        op must have been called to go next."""
        horizon = INF
        found = []
        pos = start
        while pos < n and calls[pos] <= horizon:
            if not rel >> (pos - start) & 1:
                found.append(pos)
                horizon = min(horizon, rets[pos])
            pos += 1
        return [p for p in found if calls[p] <= horizon], horizon

    seen = {}
    # (first completed op not linearized, bit mask of those after it that
    # are, how many unknown ops of each kind are, value)
    stack = [(0, 0, (0,) * len(kinds), initial)]
    explored = 0
    while stack:
        start, rel, counts, value = stack.pop()
        while True:
            if start == n:
                return True
            ready, horizon = candidates(start, rel)
            neutral = next((p for p in ready if step(effects[p], value) == [value]), None)
            if neutral is None:
                break
            start, rel = mark(start, rel, neutral)
        earlier = seen.setdefault((start, rel, value), [])
        if any(all(a <= b for a, b in zip(other, counts)) for other in earlier):
            continue
        earlier.append(counts)
        explored += 1
        if explored > budget:
            return None
        # Pushed first, so tried last: unknown ops, then completed ones
        # latest-returning first, so the earliest to return is tried first.
        for k, count in enumerate(counts):
            if count < len(unknown_calls[k]) and unknown_calls[k][count] <= horizon:
                after_counts = counts[:k] + (count + 1,) + counts[k + 1:]
                for after in step(kinds[k], value):
                    if after != value:
                        stack.append((start, rel, after_counts, after))
        for pos in sorted(ready, key=lambda p: -rets[p]):
            outcomes = step(effects[pos], value)
            if outcomes:
                after_start, after_rel = mark(start, rel, pos)
                for after in outcomes:
                    stack.append((after_start, after_rel, counts, after))
    return False
