"""Steady pacing for Locust users (no Locust import, so it is testable alone).

Each user keeps a fixed once-per-period schedule whose phase is random per
user. Locust's own `constant_pacing` measures each wait from the end of the
last task, so a user woken late keeps the delay for good; see locustfile.py
for why that matters.
"""

import random
import time


def steady_pacing(period, clock=time.monotonic, phase=random.random):
    """A Locust wait_time: the seconds until the user's next slot. Slots are
    `period` apart from a random first slot; a task that overran its slot
    skips to the next one instead of firing late."""

    def wait_time(user):
        now = clock()
        due = getattr(user, "_steady_due", None)
        if due is None:
            due = now + phase() * period
        else:
            due += period
            if due < now:
                due += period * ((now - due) // period + 1)
        user._steady_due = due
        return max(0.0, due - now)

    return wait_time
