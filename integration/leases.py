"""A sorted set of work items scored by when each is next due, handed out under leases.

Used for unfinished jobs (`pr:pending`) and undelivered webhooks (`pr:deliveries:due`).
Claiming moves an item's score to the end of its lease, atomically: no two workers get
it at once, and if the holder dies the item is due again when the lease runs out.
"""

from __future__ import annotations

import redis

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return due
"""


class LeasedSet:
    """Due-time scheduling with leases over one Redis sorted set."""

    def __init__(self, conn: redis.Redis, key: str):
        self.conn = conn
        self.key = key
        self._claim = conn.register_script(_CLAIM)

    def claim_due(self, now: float, limit: int, lease: float) -> list[str]:
        """Lease up to `limit` items due by `now` for `lease` seconds."""
        if limit <= 0:
            return []
        return [i.decode() for i in self._claim(keys=[self.key], args=[now, limit, now + lease])]

    def schedule(self, item: str, due: float) -> None:
        """Set when an item is next due (no-op once it has left the set)."""
        self.conn.zadd(self.key, {item: due}, xx=True)

    def schedule_many(self, dues: dict[str, float]) -> None:
        if dues:
            self.conn.zadd(self.key, dues, xx=True)

    def remove(self, item: str) -> None:
        self.conn.zrem(self.key, item)

    def next_due(self) -> float | None:
        first = self.conn.zrange(self.key, 0, 0, withscores=True)
        return first[0][1] if first else None
