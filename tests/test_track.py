"""The tracker's RunPod call budget: no 10-second stretch may exceed RunPod's limit."""

from __future__ import annotations

import redis

from integration.redis.budget import CallBudget


def test_no_ten_second_stretch_gets_more_than_1_1_times_the_budget(redis_url):
    budget = CallBudget(redis.Redis.from_url(redis_url), "status", per_window=100)
    granted_at: list[tuple[float, int]] = []
    # Bursts just before and just after every second boundary, far more than the budget.
    for second in range(1000, 1030):
        for at in (second + 0.001, second + 0.999):
            granted_at.append((at, budget.take("ep-1", 50, at)))
    assert sum(n for _, n in granted_at) == 30 * 10  # a tenth of the budget each second, all used
    for start, _ in granted_at:
        in_window = sum(n for at, n in granted_at if start <= at < start + 10)
        assert in_window <= 110, (start, in_window)
    # Another endpoint has its own budget.
    assert budget.take("ep-2", 50, 1000.5) == 10
