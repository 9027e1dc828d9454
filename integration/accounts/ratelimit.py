"""Requests per minute per API key: a sliding window counted in Redis, in one script.

Every admitted request is a member of the key's sorted set, scored by Redis's own clock
(so every web process agrees on the time); a request is admitted while fewer than the
limit were admitted in the last minute. The check and the count are one atomic step,
so N processes sharing a key share its limit exactly: a burst of limit + k requests
gets exactly k refusals. The headers follow OpenAI's `x-ratelimit-*` and RFC 9110's
`Retry-After`.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import redis

from integration.redis.group_commit import GroupCommit

WINDOW_SECONDS = 60
RATE = "pr:rate:{}"

# KEYS[1] the key's window (a sorted set of admitted requests, scored by ms).
# ARGV[1] the limit, ARGV[2] the window in ms, ARGV[3] a unique member for this request.
# Answers {admitted (1/0), requests in the window, ms until the oldest leaves it,
# ms until the newest leaves it}.
_HIT = """
local window_key, limit, window, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', window_key, '-inf', now - window)
local count = redis.call('ZCARD', window_key)
local admitted = 0
if count < limit then
  redis.call('ZADD', window_key, now, member)
  redis.call('PEXPIRE', window_key, window)
  count = count + 1
  admitted = 1
end
local oldest = redis.call('ZRANGE', window_key, 0, 0, 'WITHSCORES')
local newest = redis.call('ZRANGE', window_key, -1, -1, 'WITHSCORES')
local first = oldest[2] and (tonumber(oldest[2]) + window - now) or 0
local last = newest[2] and (tonumber(newest[2]) + window - now) or 0
return {admitted, count, first, last}
"""


@dataclass(frozen=True)
class RateState:
    """One request's verdict and what the headers say about the window."""

    admitted: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until a request would be admitted (when refused)
    reset: int  # seconds until the window is empty again

    def headers(self) -> dict[str, str]:
        """OpenAI's `x-ratelimit-*` headers, and `Retry-After` when refused."""
        out = {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{self.reset}s",
        }
        if not self.admitted:
            out["Retry-After"] = str(self.retry_after)
        return out

    def details(self) -> dict:
        """The 429 body's `details` (seed 003's shape)."""
        return {"limit": self.limit, "window": "minute", "retry_after_secs": self.retry_after}


class RateLimiter:
    """Counts requests per key in a one-minute sliding window."""

    def __init__(self, conn: redis.Redis, commits: GroupCommit | None = None):
        self._hit = conn.register_script(_HIT)
        self.commits = commits

    def hit(self, key_id: str, limit: int) -> RateState:
        """Count one request of `key_id` against `limit` per minute."""
        keys, args = [RATE.format(key_id)], [limit, WINDOW_SECONDS * 1000, secrets.token_hex(8)]
        answer = self.commits.call(self._hit, keys, args) if self.commits else self._hit(keys=keys, args=args)
        admitted, count, first_ms, last_ms = answer
        return RateState(
            admitted=admitted == 1,
            limit=limit,
            remaining=max(limit - count, 0),
            retry_after=max(1, math.ceil(first_ms / 1000)),
            reset=math.ceil(max(last_ms, 0) / 1000),
        )
