"""Per-key limits: requests per minute, jobs in flight, and a monthly budget in USD.

Each key's limits are stored on its record (set with `flask --app app keys limits`);
a limit not set there takes the operator's default from the environment. The rate is
counted by `integration.ratelimit`. Jobs in flight and the budget are enforced where a
job is stored (`JobStore.create`, one Lua script), so several web processes cannot
admit more than the limit between them: each job in flight holds its estimated cost as
a reservation, and when it ends the reservation is released and, if it completed, its
recorded cost is added to the month's spend (UTC calendar months).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from integration.config import Settings

IN_FLIGHT = "pr:inflight:{}"  # per key: job id -> the cost it reserved, while unfinished
USAGE = "pr:usage:{}"  # per key: 'reserved' (USD), 'spend:YYYY-MM' (USD), 'jobs:YYYY-MM'
UNLIMITED = "unlimited"
LIMIT_FIELDS = {"rpm": "requests_per_minute", "concurrency": "jobs_in_flight", "budget": "monthly_budget"}


def month(at: float | None = None) -> str:
    """The budget period a moment belongs to: its UTC calendar month, `YYYY-MM`."""
    return time.strftime("%Y-%m", time.gmtime(time.time() if at is None else at))


@dataclass(frozen=True)
class Limits:
    """A key's effective limits; None means unlimited."""

    requests_per_minute: int | None
    jobs_in_flight: int | None
    monthly_budget: float | None

    @classmethod
    def resolve(cls, stored: dict[str, str], settings: Settings) -> Limits:
        """Limits from a key record's fields (`rpm`, `concurrency`, `budget`), defaults filled in."""

        def pick(name: str, default, kind):
            raw = stored.get(name, "")
            if raw == UNLIMITED:
                return None
            return kind(raw) if raw != "" else default

        return cls(
            requests_per_minute=pick("rpm", settings.rate_limit_per_minute or None, int),
            jobs_in_flight=pick("concurrency", settings.jobs_in_flight_limit or None, int),
            monthly_budget=pick("budget", settings.monthly_budget, float),
        )

    def to_dict(self) -> dict:
        return {
            "requests_per_minute": self.requests_per_minute,
            "jobs_in_flight": self.jobs_in_flight,
            "monthly_budget": self.monthly_budget,
        }


class LimitReached(Exception):
    """A job was not stored: the key's concurrency limit or budget would be crossed."""

    def __init__(self, code: str, details: dict):
        super().__init__(code)
        self.code = code
        self.details = details

    @classmethod
    def concurrency(cls, limit: int, in_flight: int) -> LimitReached:
        return cls("concurrency_limit_exceeded", {"limit": limit, "in_flight": in_flight})

    @classmethod
    def budget(cls, budget: float, period: str, spend: float, reserved: float, cost: float) -> LimitReached:
        details = {"budget": budget, "period": period, "spend": round(spend, 6), "reserved": round(max(reserved, 0), 6)}
        return cls("budget_exceeded", {**details, "estimated_cost": cost})


@dataclass(frozen=True)
class Usage:
    """What a key is using now: jobs in flight, the cost they reserve, the month's spend."""

    period: str
    jobs_in_flight: int
    reserved: float
    spend: float
    completed_jobs: int

    def to_dict(self) -> dict:
        return {
            "period": self.period,
            "jobs_in_flight": self.jobs_in_flight,
            "reserved": round(max(self.reserved, 0.0), 6),
            "spend": round(self.spend, 6),
            "completed_jobs": self.completed_jobs,
            "currency": "USD",
        }


def usage(conn: redis.Redis, key_id: str, period: str | None = None) -> Usage:
    """A key's usage in `period` (default: this month)."""
    period = period or month()
    pipe = conn.pipeline(transaction=False)
    pipe.hlen(IN_FLIGHT.format(key_id))
    pipe.hmget(USAGE.format(key_id), "reserved", f"spend:{period}", f"jobs:{period}")
    in_flight, (reserved, spend, jobs) = pipe.execute()
    return Usage(period, in_flight, float(reserved or 0), float(spend or 0), int(jobs or 0))


def check(conn: redis.Redis, key_id: str, limits: Limits, cost: float = 0.0) -> None:
    """Raise `LimitReached` if a job of `cost` would cross a limit now (a read, not a claim:
    for the RunPod direct routes, whose job exists at RunPod before podrelay stores it)."""
    if limits.jobs_in_flight is None and limits.monthly_budget is None:
        return
    now = usage(conn, key_id)
    if limits.jobs_in_flight is not None and now.jobs_in_flight >= limits.jobs_in_flight:
        raise LimitReached.concurrency(limits.jobs_in_flight, now.jobs_in_flight)
    if limits.monthly_budget is not None and now.spend + max(now.reserved, 0) + cost > limits.monthly_budget + 1e-9:
        raise LimitReached.budget(limits.monthly_budget, now.period, now.spend, now.reserved, cost)
