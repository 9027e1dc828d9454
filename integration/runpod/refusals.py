"""RunPod refusing podrelay's API key (401/403): an operator's problem, said where operators look.

The tracker records the refusal here (and logs it at ERROR); `/readyz` names it until a
submission is accepted again. The record expires on its own after an hour without news.
"""

from __future__ import annotations

import json
import time

import redis

REFUSED = "pr:rpauth"  # the last refusal: {"at", "status", "endpoint_id", "message"}
KEPT = 3600


def record(conn: redis.Redis, status: int | None, endpoint_id: str, message: str) -> None:
    """Note that RunPod refused the key just now."""
    body = {"at": int(time.time()), "status": status, "endpoint_id": endpoint_id, "message": message[:500]}
    conn.set(REFUSED, json.dumps(body), ex=KEPT)


def clear(conn: redis.Redis) -> None:
    """RunPod took a submission: the key works again."""
    conn.delete(REFUSED)


def last(conn: redis.Redis) -> dict | None:
    """The refusal in force, or None."""
    value = conn.get(REFUSED)
    return json.loads(value) if value else None


def queue(pipe: redis.client.Pipeline) -> None:
    """Queue on `pipe` the read of the refusal in force (one answer: `parse` it)."""
    pipe.get(REFUSED)


def parse(value: bytes | None) -> dict | None:
    """The refusal from `queue`'s answer."""
    return json.loads(value) if value else None
