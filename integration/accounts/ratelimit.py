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
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import redis

from integration.errors import ApiError
from integration.redis.group_commit import GroupCommit

WINDOW_SECONDS = 60
RATE = "pr:rate:{}"

WINDOW_LUA = Path(__file__).resolve().parent / "window.lua"  # `rate_hit`, shared with jobs/create.lua
# KEYS[1] the key's window; ARGV[1] the limit, ARGV[2] the window in ms, ARGV[3] a unique member.
_HIT = WINDOW_LUA.read_text() + "\nreturn rate_hit(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])\n"


class RateState(NamedTuple):
    """One request's verdict and what the headers say about the window (a tuple: every keyed
    request makes one, and a frozen dataclass's fields are set one `object.__setattr__` at a time)."""

    admitted: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until a request would be admitted (when refused; 1 when admitted)
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


def window_key(key_id: str) -> str:
    """The Redis key of a key's window (for a script that counts a request beside its own work)."""
    return RATE.format(key_id)


def hit_args(limit: int) -> list:
    """A script's arguments for counting one request against `limit` per minute."""
    return [limit, WINDOW_SECONDS * 1000, f"{random.getrandbits(64):016x}"]  # unique, not secret


def state(limit: int, answer: list) -> RateState:
    """The verdict and headers from `rate_hit`'s answer."""
    admitted, count, first_ms, last_ms = answer
    return RateState(
        admitted=admitted == 1,
        limit=limit,
        remaining=max(limit - count, 0),
        retry_after=max(1, math.ceil(first_ms / 1000)),
        reset=math.ceil(max(last_ms, 0) / 1000),
    )


class RateExceeded(ApiError):
    """429 `rate_limit_exceeded`, with the window's headers."""

    def __init__(self, rate: RateState):
        message = f"Rate limit exceeded: {rate.limit} requests per minute"
        super().__init__(429, "rate_limit_exceeded", message, details=rate.details(), headers=rate.headers())
        self.rate = rate


@dataclass
class RateCount:
    """A request whose rate-limit count is left to the write that stores its job (one round
    trip for both); `state` is set once it is counted."""

    limit: int
    state: RateState | None = None


class RateLimiter:
    """Counts requests per key in a one-minute sliding window."""

    def __init__(self, conn: redis.Redis, commits: GroupCommit | None = None):
        self._hit = conn.register_script(_HIT)
        self.commits = commits
        self._full_until: dict[str, float] = {}  # keys whose window this process saw full, until it may not be

    def note(self, key_id: str, rate: RateState) -> None:
        """Remember whether a key's window is full (its next request is then counted before
        anything else is done for it, and refused at once)."""
        if rate.remaining > 0:
            self._full_until.pop(key_id, None)
            return
        if len(self._full_until) >= 10_000:
            self._full_until.clear()
        self._full_until[key_id] = time.monotonic() + max(rate.reset, 1)

    def seen_full(self, key_id: str) -> bool:
        """Whether this process last saw the key's window full, and it may still be."""
        until = self._full_until.get(key_id)
        return until is not None and until > time.monotonic()

    def hit(self, key_id: str, limit: int) -> RateState:
        """Count one request of `key_id` against `limit` per minute."""
        keys, args = [window_key(key_id)], hit_args(limit)
        answer = self.commits.call(self._hit, keys, args) if self.commits else self._hit(keys=keys, args=args)
        return state(limit, answer)
