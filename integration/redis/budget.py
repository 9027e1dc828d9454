"""Budgets of calls per second, per name, shared by every process through Redis.

Used for RunPod's limits per endpoint (RunPod allows 1,000 `/run` and 2,000 `/status`
calls per 10 s per endpoint, runpod/docs `send-requests.mdx` "Rate limits"; podrelay spends
a tenth of its own budget, `RUNPOD_RUN_BUDGET`, `RUNPOD_STATUS_BUDGET`, per second, so any
10 consecutive seconds, however RunPod's window is aligned, see at most 1.1 × the budget)
and for webhook deliveries per API key (`WEBHOOK_RATE_PER_KEY`).
"""

from __future__ import annotations

import redis

_BUDGET = "pr:budget:{}:{}:{}"  # operation, name (an endpoint, a key), second


class CallBudget:
    """Counts calls of one RunPod operation per endpoint, across processes, a tenth of the
    10-second budget per second: any 10 consecutive seconds (which touch at most 11 of
    these windows) then see at most 1.1 x the budget, under RunPod's limit however its
    window is aligned. (A budget per aligned 10-second window allowed twice the budget
    across a window boundary: measured 2,033 /status in 10 s against 2,000.)"""

    def __init__(self, conn: redis.Redis, operation: str, per_window: int):
        """`per_window` calls per 10 s: a tenth of them each second."""
        self.conn = conn
        self.operation = operation
        self.per_second = max(1, per_window // 10)

    def take(self, name: str, wanted: int, now: float) -> int:
        """How many of `wanted` calls for `name` may go now (the rest wait for a later second)."""
        key = _BUDGET.format(self.operation, name, int(now))
        pipe = self.conn.pipeline(transaction=False)
        pipe.incrby(key, wanted)
        pipe.expire(key, 10)
        used = pipe.execute()[0]
        granted = max(0, min(wanted, self.per_second - (used - wanted)))
        if granted < wanted:
            self.conn.decrby(key, wanted - granted)
        return granted

    def give_back(self, name: str, unused: int, now: float) -> None:
        """Return calls taken for `name` this second and not made."""
        if unused > 0:
            self.conn.decrby(_BUDGET.format(self.operation, name, int(now)), unused)
