"""A job's metrics read back: its pace and the time left."""

import pytest

from gradlens.metrics import last_step, pace


def test_pace_is_the_recent_steps_per_second_and_the_time_left_at_it():
    records = [{"kind": "train", "step": s, "seconds": 2.0 if s <= 10 else 0.5}
               for s in range(1, 31)]
    records.append({"kind": "eval", "step": 30, "split": "dev", "language": "all", "chrf": 1.0})
    rate, left = pace(records, total=100)
    assert last_step(records) == 30
    assert rate == pytest.approx(2.0)  # the last 20 steps, not the slow start
    assert left == pytest.approx(70 / 2.0)
    assert pace([], total=100) is None
