"""A sorted set of work items scored by when each is next due, handed out under leases.

Used for unfinished jobs (`pr:pending`) and undelivered webhooks (`pr:deliveries:due`).
Claiming moves an item's score to the end of its lease, atomically: no two workers get
it at once, and if the holder dies the item is due again when the lease runs out.
"""

from __future__ import annotations

import redis

# Lease due items. KEYS[1] the set. ARGV[1] now, ARGV[2] the most items, ARGV[3] when the
# lease ends. Answers the leased items.
_CLAIM = """
local set, now, most, lease_end = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local due = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, most)
for _, item in ipairs(due) do redis.call('ZADD', set, lease_end, item) end
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
        """Set when several items are next due, in one command."""
        if dues:
            self.conn.zadd(self.key, dues, xx=True)

    def remove(self, item: str) -> None:
        """Forget an item (done, or gone)."""
        self.conn.zrem(self.key, item)

    def next_due(self) -> float | None:
        """When the earliest item is due, or None when the set is empty."""
        first = self.conn.zrange(self.key, 0, 0, withscores=True)
        return first[0][1] if first else None
