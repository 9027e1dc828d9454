"""Held connections per API key: requests that stay open (`Prefer: wait`, OpenAI mode,
`runsync`, Server-Sent Events, WebSockets), counted across every web process.

A key may hold `HELD_PER_KEY` at once (429 `too_many_held_connections` beyond), so one key
cannot take every connection slot of the web processes; each hold lapses after its
longest duration even if its process died, and streams end at `HOLD_MAX_SECONDS`.
"""

from __future__ import annotations

import secrets

import redis

from integration.errors import ApiError

HELD = "pr:held:{}"  # per key: hold id -> when it lapses (ms, Redis's clock)

# KEYS[1] the key's holds. ARGV[1] the most at once, ARGV[2] seconds this one may last,
# ARGV[3] its id. Answers {1, holds} when taken, {0, holds} when the key has its fill.
_TAKE = """
local holds, most, seconds, id = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
local count = redis.call('ZCARD', holds)
if count >= most then return {0, count} end
redis.call('ZADD', holds, now + seconds * 1000, id)
redis.call('PEXPIRE', holds, seconds * 1000)
return {1, count + 1}
"""


class Holds:
    """Takes and gives back a key's held connections."""

    def __init__(self, conn: redis.Redis):
        self.conn = conn
        self._take = conn.register_script(_TAKE)

    def take(self, key_id: str, most: int, seconds: float) -> str:
        """A hold for up to `seconds`; a 429 when the key already holds `most`."""
        hold = secrets.token_hex(8)
        taken, count = self._take(keys=[HELD.format(key_id)], args=[most, max(1, int(seconds) + 5), hold])
        if not taken:
            message = f"This key holds {count} connections open (waits and streams), its most: let one end first"
            raise ApiError(429, "too_many_held_connections", message, headers={"Retry-After": "5"}, details={"limit": most})
        return hold

    def give_back(self, key_id: str, hold: str) -> None:
        """The held request ended."""
        self.conn.zrem(HELD.format(key_id), hold)
