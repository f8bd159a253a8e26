"""python3 -m unittest discover -s locust (no Locust needed)."""

import unittest

from pacing import steady_pacing


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class User:
    pass


class SteadyPacingTest(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.wait = steady_pacing(1.0, clock=self.clock, phase=lambda: 0.25)
        self.user = User()

    def run_task(self, seconds, late=0.0):
        """Waits as Locust would (waking `late` seconds late), then spends
        `seconds` on the task."""
        self.clock.now += self.wait(self.user) + late
        start = self.clock.now
        self.clock.now += seconds
        return start

    def test_first_slot_is_at_the_random_phase(self):
        self.assertAlmostEqual(self.run_task(0.0), 100.25)

    def test_slots_stay_one_period_apart_whatever_the_task_takes(self):
        starts = [self.run_task(t) for t in (0.01, 0.3, 0.9, 0.0, 0.5)]
        self.assertEqual([round(s, 6) for s in starts], [100.25, 101.25, 102.25, 103.25, 104.25])

    def test_a_late_wake_up_does_not_move_the_schedule(self):
        self.run_task(0.0)
        self.assertAlmostEqual(self.run_task(0.0, late=0.2), 101.45)
        self.assertAlmostEqual(self.run_task(0.0), 102.25)

    def test_an_overrun_skips_to_the_next_slot_keeping_the_phase(self):
        self.run_task(2.5)  # slot 100.25 ran until 102.75
        self.assertAlmostEqual(self.run_task(0.0), 103.25)

    def test_users_get_their_own_phase(self):
        phases = iter([0.0, 0.5])
        wait = steady_pacing(1.0, clock=self.clock, phase=lambda: next(phases))
        self.assertEqual([wait(User()), wait(User())], [0.0, 0.5])


if __name__ == "__main__":
    unittest.main()
