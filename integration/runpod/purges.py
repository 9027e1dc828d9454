"""When an endpoint's queue was last purged at RunPod (`purge-queue`, admin keys only).

RunPod forgets purged jobs, so a poll then finds none; a job submitted before the purge
that never started was removed by it, and ends `cancelled` saying so, not "expired".
"""

from __future__ import annotations

import time

import redis

PURGED = "pr:purged:{}"  # per endpoint: when its queue was last purged
KEPT = 24 * 3600


def record(conn: redis.Redis, endpoint_id: str) -> None:
    """Note a purge of the endpoint's queue just now."""
    conn.set(PURGED.format(endpoint_id), time.time(), ex=KEPT)


def last(conn: redis.Redis, endpoint_id: str) -> float:
    """When the endpoint's queue was last purged (0: not in the last day)."""
    value = conn.get(PURGED.format(endpoint_id))
    return float(value) if value else 0.0
