"""Settings from the environment (twelve-factor), shared by web and worker processes.

The variables and their defaults are the contract in DESIGN.md, "Configuration".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace

DEFAULT_RUNPOD_API_BASE = "https://api.runpod.ai/v2"
DEFAULT_WEBHOOK_RETRY_SCHEDULE = "0,5,300,1800,7200,18000,36000,36000"
DEVELOPMENT_SECRET = "podrelay-development-secret"


def _int(env: dict, name: str, default: int) -> int:
    value = env.get(name)
    return int(value) if value not in (None, "") else default


def _float(env: dict, name: str, default: float) -> float:
    value = env.get(name)
    return float(value) if value not in (None, "") else default


def _flag(env: dict, name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """Everything podrelay reads from its environment, parsed once."""

    redis_url: str | None = None
    data_dir: str = "./var"
    runpod_api_key: str = ""
    runpod_api_base: str = DEFAULT_RUNPOD_API_BASE
    # RUNPOD_ENDPOINT_<SURFACE> and RUNPOD_ENDPOINT_<SURFACE>__<MODEL>, upper-cased.
    endpoints: dict[str, str] = field(default_factory=dict)
    public_base_url: str | None = None
    secret_key: str = DEVELOPMENT_SECRET
    environment: str = "development"
    webhook_allow_private: bool = False
    webhook_retry_schedule: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_rotation_window: float = 24 * 3600  # a rotated-out secret keeps signing this long
    webhook_disable_after: float = 5 * 24 * 3600  # a subscription failing this long is disabled
    webhook_timeout: float = 15.0
    webhook_concurrency: int = 64  # deliveries in flight per worker process
    webhook_concurrency_per_endpoint: int = 8
    result_ttl: int = 7 * 24 * 3600
    max_body_bytes: int = 1024 * 1024
    callback_max_bytes: int = 64 * 1024 * 1024  # RunPod's callback carries the whole output
    # Tracking: how often jobs are checked at RunPod, and how hard RunPod may be hit.
    status_budget_per_10s: int = 1600  # RunPod allows 2,000 /status per 10 s per endpoint
    run_budget_per_10s: int = 800  # RunPod allows 1,000 /run per 10 s per endpoint
    poll_min_interval: float = 0.5
    poll_max_interval: float = 30.0
    callback_poll_after: float = 120.0  # with callbacks on, the first confirming poll
    # How long a worker holds a job it is working on (and a submission lock): longer than
    # any one RunPod call. When a worker dies, its jobs resume after this.
    price_table: str = ""  # PRICE_TABLE: JSON overrides of the registry's unit prices
    ready_max_overdue: int = 10_000  # /readyz fails past this many jobs and deliveries overdue
    prefer_wait_max: float = 60.0  # the longest `Prefer: wait` honoured, seconds
    openai_wait_max: float = 300.0  # how long an OpenAI-mode request is held for its job
    lease_seconds: float = 60.0
    retry_base: float = 1.0  # RunPod unavailable: wait base * 2^attempt (capped at 10 min)
    tracker_concurrency: int = 32
    runpod_timeout: tuple[float, float] = (5.0, 30.0)
    # Per-key defaults (a key's own limits, set by `keys limits`, win); 0 / None: unlimited.
    rate_limit_per_minute: int = 600
    jobs_in_flight_limit: int = 1000
    monthly_budget: float | None = None  # USD
    idempotency_ttl: int = 24 * 3600  # how long a POST's answer is kept for its Idempotency-Key
    metrics_token: str = ""  # when set, /metrics wants it as a Bearer token

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
        """Read settings from `env` (default: the process environment)."""
        env = dict(os.environ if env is None else env)
        endpoints = {
            name[len("RUNPOD_ENDPOINT_") :]: value for name, value in env.items() if name.startswith("RUNPOD_ENDPOINT_") and value
        }
        schedule = env.get("WEBHOOK_RETRY_SCHEDULE") or DEFAULT_WEBHOOK_RETRY_SCHEDULE
        environment = env.get("PODRELAY_ENV", "development")
        secret = env.get("SECRET_KEY", "")
        if not secret:
            if environment != "development":
                raise RuntimeError("SECRET_KEY must be set outside development")
            secret = DEVELOPMENT_SECRET
        return cls(
            redis_url=env.get("REDIS_URL") or None,
            data_dir=env.get("DATA_DIR") or "./var",
            runpod_api_key=env.get("RUNPOD_API_KEY", ""),
            runpod_api_base=(env.get("RUNPOD_API_BASE") or DEFAULT_RUNPOD_API_BASE).rstrip("/"),
            endpoints=endpoints,
            public_base_url=(env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
            secret_key=secret,
            environment=environment,
            webhook_allow_private=_flag(env, "WEBHOOK_ALLOW_PRIVATE"),
            webhook_retry_schedule=tuple(float(s) for s in schedule.split(",") if s.strip()),
            webhook_rotation_window=_float(env, "WEBHOOK_ROTATION_WINDOW", 24 * 3600),
            webhook_disable_after=_float(env, "WEBHOOK_DISABLE_AFTER", 5 * 24 * 3600),
            webhook_timeout=_float(env, "WEBHOOK_TIMEOUT", 15.0),
            webhook_concurrency=_int(env, "WEBHOOK_CONCURRENCY", 64),
            webhook_concurrency_per_endpoint=_int(env, "WEBHOOK_CONCURRENCY_PER_ENDPOINT", 8),
            result_ttl=_int(env, "RESULT_TTL", 7 * 24 * 3600),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1024 * 1024),
            callback_max_bytes=_int(env, "CALLBACK_MAX_BYTES", 64 * 1024 * 1024),
            status_budget_per_10s=_int(env, "RUNPOD_STATUS_BUDGET", 1600),
            run_budget_per_10s=_int(env, "RUNPOD_RUN_BUDGET", 800),
            poll_min_interval=_float(env, "POLL_MIN_INTERVAL", 0.5),
            poll_max_interval=_float(env, "POLL_MAX_INTERVAL", 30.0),
            callback_poll_after=_float(env, "CALLBACK_POLL_AFTER", 120.0),
            price_table=env.get("PRICE_TABLE", ""),
            ready_max_overdue=_int(env, "READY_MAX_OVERDUE", 10_000),
            prefer_wait_max=_float(env, "PREFER_WAIT_MAX", 60.0),
            openai_wait_max=_float(env, "OPENAI_WAIT_MAX", 300.0),
            lease_seconds=_float(env, "LEASE_SECONDS", 60.0),
            retry_base=_float(env, "RUNPOD_RETRY_BASE", 1.0),
            tracker_concurrency=_int(env, "TRACKER_CONCURRENCY", 32),
            rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", 600),
            jobs_in_flight_limit=_int(env, "MAX_JOBS_IN_FLIGHT", 1000),
            monthly_budget=float(env["MONTHLY_BUDGET"]) if env.get("MONTHLY_BUDGET") else None,
            idempotency_ttl=_int(env, "IDEMPOTENCY_TTL", 24 * 3600),
            metrics_token=env.get("METRICS_TOKEN", ""),
        )

    def with_changes(self, **changes) -> Settings:
        """A copy with some settings replaced (tests use it)."""
        return replace(self, **changes)

    def endpoint_for(self, surface: str, model: str) -> str | None:
        """The RunPod endpoint id for a surface and model: a per-model setting wins."""
        model_key = re.sub(r"[^A-Z0-9]", "_", model.upper())
        surface_key = surface.upper()
        return self.endpoints.get(f"{surface_key}__{model_key}") or self.endpoints.get(surface_key)
