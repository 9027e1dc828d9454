"""Per-key limits: requests per minute, jobs in flight, and a monthly budget in USD.

Each limit is one row of `LIMITS`: its name on a key's record (and its `keys limits`
option), its field in `Limits`, how a value is read, and the operator's default in
`Settings`. A key's own value wins; `unlimited` lifts the limit. The rate is counted by
`ratelimit.py`. Jobs in flight and the budget are enforced where a job is stored (the
jobs store's create script, which touches this package's keys through
`reservation_keys`), so several web processes cannot admit more than the limit between
them: each job in flight holds its estimated cost as a reservation, and when it ends the
reservation is released and, if it completed, its recorded cost is added to the month's
spend (UTC calendar months).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

import redis

from integration.config import Settings
from integration.errors import ApiError

_IN_FLIGHT = "pr:inflight:{}"  # per key: job id -> the cost it reserved, while unfinished
_USAGE = "pr:usage:{}"  # per key: 'reserved' (USD), 'spend:YYYY-MM' (USD), 'jobs:YYYY-MM'
UNLIMITED = "unlimited"


@dataclass(frozen=True)
class LimitSpec:
    """One per-key limit: its record field and option, its `Limits` field, its parser, its default."""

    name: str  # on the key's record, and `keys limits --<name>`
    field: str  # in `Limits`
    parse: Callable[[str], float]
    default: Callable[[Settings], float | None]  # the operator's default; None: unlimited
    help: str


LIMITS = (
    LimitSpec("rpm", "requests_per_minute", int, lambda s: s.rate_limit_per_minute or None, "Requests per minute"),
    LimitSpec("concurrency", "jobs_in_flight", int, lambda s: s.jobs_in_flight_limit or None, "Jobs in flight at once"),
    LimitSpec("budget", "monthly_budget", float, lambda s: s.monthly_budget, "Monthly budget in USD"),
    # Not a limit but a share: of each endpoint's /run budget, against the other keys waiting (integration/jobs/fairness.py).
    LimitSpec("weight", "share_weight", float, lambda s: 1.0, "Share of each endpoint's submissions (default 1)"),
)
LIMIT_FIELDS = {spec.name: spec.field for spec in LIMITS}


def month(at: float | None = None) -> str:
    """The budget period a moment belongs to: its UTC calendar month, `YYYY-MM` (the last
    month asked is kept with its bounds: every accepted job asks)."""
    at = time.time() if at is None else at
    start, end, label = _last_month
    if start <= at < end:
        return label
    return _month_of(at)


_last_month: tuple[float, float, str] = (0.0, 0.0, "")


def _month_of(at: float) -> str:
    global _last_month
    day = time.gmtime(at)
    start = calendar.timegm((day.tm_year, day.tm_mon, 1, 0, 0, 0))
    year, number = (day.tm_year + 1, 1) if day.tm_mon == 12 else (day.tm_year, day.tm_mon + 1)
    label = f"{day.tm_year:04d}-{day.tm_mon:02d}"
    _last_month = (start, calendar.timegm((year, number, 1, 0, 0, 0)), label)
    return label


def parse_limit(name: str, value: str) -> str:
    """A limit's value as stored: `unlimited` or a non-negative number (ValueError otherwise)."""
    spec = next((s for s in LIMITS if s.name == name), None)
    if spec is None:
        raise ValueError(f"unknown limit {name}")
    if spec.name == "weight" and value == UNLIMITED:
        raise ValueError("weight must be a number above 0")
    if value == UNLIMITED or (value.strip() == "0" and spec.name not in ("budget", "weight")):
        return UNLIMITED  # 0 means no limit, as RATE_LIMIT_PER_MINUTE=0 and MAX_JOBS_IN_FLIGHT=0 do
    try:
        number = spec.parse(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, 'unlimited' or 'default', not {value!r}") from None
    if number < 0 or (spec.name == "weight" and not 0 < number <= 1000):
        raise ValueError(f"{name} must not be negative" if number < 0 else "weight must be above 0 and at most 1000")
    return str(number)


@dataclass(frozen=True)
class Limits:
    """A key's effective limits; None means unlimited."""

    requests_per_minute: int | None
    jobs_in_flight: int | None
    monthly_budget: float | None
    share_weight: float | None = 1.0

    @classmethod
    def resolve(cls, stored: dict[str, str], settings: Settings) -> Limits:
        """Limits from a key record's fields (`rpm`, `concurrency`, `budget`), defaults filled in."""
        values = {}
        for spec in LIMITS:
            raw = stored.get(spec.name, "")
            values[spec.field] = None if raw == UNLIMITED else spec.parse(raw) if raw != "" else spec.default(settings)
        return cls(**values)

    def to_dict(self) -> dict:
        """The limits as `GET /v1/usage` shows them (null: unlimited)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> str:
        """One line for people (the `keys` CLI)."""

        def show(value, unit: str) -> str:
            return f"{'unlimited' if value is None else f'{value:g}'} {unit}"

        budget = "no monthly budget" if self.monthly_budget is None else f"{self.monthly_budget:g} USD/month"
        shown = [show(self.requests_per_minute, "requests/minute"), show(self.jobs_in_flight, "jobs in flight"), budget]
        return ", ".join([*shown, f"weight {self.share_weight or 1:g}"])


class LimitReached(ApiError):
    """A job was not stored: the key's concurrency limit or budget would be crossed (seed 003's bodies)."""

    @classmethod
    def concurrency(cls, limit: int, in_flight: int) -> LimitReached:
        """429 `concurrency_limit_exceeded`."""
        message = f"Concurrency limit exceeded: {limit} jobs in flight; retry when one has ended"
        details = {"limit": limit, "in_flight": in_flight}
        return cls(429, "concurrency_limit_exceeded", message, details=details, headers={"Retry-After": "5"})

    @classmethod
    def budget(cls, budget: float, period: str, spend: float, reserved: float, cost: float) -> LimitReached:
        """402 `budget_exceeded`."""
        details = {"budget": budget, "period": period, "spend": round(spend, 6), "reserved": round(max(reserved, 0), 6)}
        return cls(
            402, "budget_exceeded", "Budget limit exceeded for monthly period", details={**details, "estimated_cost": cost}
        )


@dataclass(frozen=True)
class Usage:
    """What a key is using now: jobs in flight, the cost they reserve, the month's spend."""

    period: str
    jobs_in_flight: int
    reserved: float
    spend: float
    completed_jobs: int

    def to_dict(self) -> dict:
        """The usage as `GET /v1/usage` shows it."""
        return {
            "period": self.period,
            "jobs_in_flight": self.jobs_in_flight,
            "reserved": round(max(self.reserved, 0.0), 6),
            "spend": round(self.spend, 6),
            "completed_jobs": self.completed_jobs,
            "currency": "USD",
        }


def reservation_keys(key_id: str) -> list[str]:
    """The keys a job's scripts touch to reserve, release and charge its cost: jobs in flight, usage."""
    return [_IN_FLIGHT.format(key_id), _USAGE.format(key_id)]


def reserve(pipe: redis.client.Pipeline, key_id: str, job_id: str, cost: float) -> None:
    """Queue on `pipe` a job's reservation again (a finished job that RunPod runs again)."""
    pipe.hset(_IN_FLIGHT.format(key_id), job_id, cost)
    pipe.hincrbyfloat(_USAGE.format(key_id), "reserved", cost)


def usage(conn: redis.Redis, key_id: str, period: str | None = None) -> Usage:
    """A key's usage in `period` (default: this month)."""
    period = period or month()
    pipe = conn.pipeline(transaction=False)
    pipe.hlen(_IN_FLIGHT.format(key_id))
    pipe.hmget(_USAGE.format(key_id), "reserved", f"spend:{period}", f"jobs:{period}")
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
