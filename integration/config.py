"""Settings from the environment (twelve-factor), shared by web and worker processes.

Each variable is written once, as a field of `Settings`: its name, default, parser and
meaning (`setting(...)`). `Settings.from_env` reads them, `Settings.to_env` writes them
back (the tests start processes with it), and a test checks that the README's table
names every one. The variables and their defaults are the contract in DESIGN.md,
"Configuration".
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

DEFAULT_RUNPOD_API_BASE = "https://api.runpod.ai/v2"
DEVELOPMENT_SECRET = "podrelay-development-secret"
ENDPOINT_PREFIX = "RUNPOD_ENDPOINT_"
WORKER_PREFIX = "RUNPOD_WORKER_"
WORKFLOW_PREFIX = "COMFYUI_WORKFLOW_"
PREFIXED = {"endpoints": ENDPOINT_PREFIX, "workers": WORKER_PREFIX, "comfyui_workflows": WORKFLOW_PREFIX}


class SettingError(ValueError):
    """A variable's value cannot be read; the message names the variable (one line, no traceback)."""


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, how its text becomes a value and back, what it means."""

    name: str
    parse: Callable[[str], Any]
    expects: str  # what a valid value looks like, for the error message
    text: Callable[[Any], str] = str


def _number(kind: type, minimum: float | None = 0) -> Callable[[str], Any]:
    def parse(raw: str):
        value = kind(raw.strip())
        if minimum is not None and value < minimum:
            raise ValueError(raw)
        return value

    return parse


def _flag(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _seconds_list(raw: str) -> tuple[float, ...]:
    values = tuple(float(s) for s in raw.split(",") if s.strip())
    if not values or min(values) < 0:
        raise ValueError(raw)
    return values


def _aliases(raw: str) -> dict:
    value = json.loads(raw)
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError(raw)
    return value


def _files_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in ("s3", "file") or not value.split("://", 1)[1]:
        raise ValueError(raw)
    return value


_INT = ("a whole number", _number(int), str)
_FLOAT = ("a number", _number(float), str)


def setting(name: str, default: Any, kind: tuple | str = "text") -> Any:
    """A `Settings` field read from the variable `name` (empty or unset: `default`)."""
    if kind == "text":
        variable = Variable(name, str, "text")
    elif kind == "url":
        variable = Variable(name, lambda raw: raw.strip().rstrip("/"), "a URL", lambda v: v or "")
    elif kind == "flag":
        variable = Variable(name, _flag, "1 or 0", lambda v: "1" if v else "")
    elif kind == "seconds list":
        variable = Variable(name, _seconds_list, "seconds, comma-separated", lambda v: ",".join(f"{s:g}" for s in v))
    elif kind == "optional float":
        variable = Variable(name, _number(float), "a number", lambda v: "" if v is None else str(v))
    else:
        expects, parse, text = kind
        variable = Variable(name, parse, expects, text)
    return field(default=default, metadata={"variable": variable})


ROUTER_MARGIN = 5.0  # seconds under a router's first-byte limit that a held request answers by


@dataclass(frozen=True)
class Settings:
    """Everything podrelay reads from its environment, parsed once."""

    redis_url: str | None = setting("REDIS_URL", None, "url")  # unset: the embedded Redis under DATA_DIR
    redis_tls_url: str | None = setting("REDIS_TLS_URL", None, "url")  # set by some platforms beside REDIS_URL: preferred
    redis_tls_verify: bool = setting("REDIS_TLS_VERIFY", False, "flag")  # verify a rediss:// server's certificate
    redis_tls_ca_file: str = setting("REDIS_TLS_CA_FILE", "")  # the CA that signed it (with REDIS_TLS_VERIFY)
    redis_web_connections: int = setting("REDIS_WEB_CONNECTIONS", 4, _INT)  # per web process (x WEB_CONCURRENCY)
    redis_worker_connections: int = setting("REDIS_WORKER_CONNECTIONS", 8, _INT)  # per worker process
    data_dir: str = setting("DATA_DIR", "./var")
    runpod_api_key: str = setting("RUNPOD_API_KEY", "")
    runpod_api_base: str = setting("RUNPOD_API_BASE", DEFAULT_RUNPOD_API_BASE, "url")
    # RUNPOD_ENDPOINT_<SURFACE> and RUNPOD_ENDPOINT_<SURFACE>__<MODEL>, upper-cased.
    endpoints: dict[str, str] = field(default_factory=dict)
    # RUNPOD_WORKER_<SURFACE>[__<MODEL>]: the worker behind the endpoint (integration/adapters/).
    workers: dict[str, str] = field(default_factory=dict)
    # COMFYUI_WORKFLOW_<SURFACE>[__<MODEL>]: a workflow file (or its JSON) for worker-comfyui.
    comfyui_workflows: dict[str, str] = field(default_factory=dict)
    public_base_url: str | None = setting("PUBLIC_BASE_URL", None, "url")  # unset: no callbacks, polling only
    secret_key: str = setting("SECRET_KEY", "")  # unset: see `require_secret`
    environment: str = setting("PODRELAY_ENV", "production")  # "development" only when said so
    webhook_allow_private: bool = setting("WEBHOOK_ALLOW_PRIVATE", False, "flag")
    webhook_retry_schedule: tuple[float, ...] = setting(
        "WEBHOOK_RETRY_SCHEDULE", (0, 5, 300, 1800, 7200, 18000, 36000, 36000), "seconds list"
    )
    webhook_rotation_window: float = setting("WEBHOOK_ROTATION_WINDOW", 24 * 3600, _FLOAT)  # a rotated-out secret signs this long
    webhook_disable_after: float = setting("WEBHOOK_DISABLE_AFTER", 5 * 24 * 3600, _FLOAT)  # failing this long: disabled
    webhook_timeout: float = setting("WEBHOOK_TIMEOUT", 15.0, _FLOAT)  # one attempt, wall clock: connect, headers, body
    webhook_concurrency: int = setting("WEBHOOK_CONCURRENCY", 64, _INT)  # deliveries in flight per worker process
    webhook_concurrency_per_endpoint: int = setting("WEBHOOK_CONCURRENCY_PER_ENDPOINT", 8, _INT)
    webhook_max_subscriptions: int = setting("WEBHOOK_MAX_SUBSCRIPTIONS", 20, _INT)  # per API key
    webhook_concurrency_per_key: int = setting("WEBHOOK_CONCURRENCY_PER_KEY", 16, _INT)  # in flight per process
    webhook_rate_per_key: int = setting("WEBHOOK_RATE_PER_KEY", 100, _INT)  # deliveries a second, all processes
    result_ttl: int = setting("RESULT_TTL", 7 * 24 * 3600, _INT)
    max_body_bytes: int = setting("MAX_BODY_BYTES", 1024 * 1024, _INT)
    callback_max_bytes: int = setting("CALLBACK_MAX_BYTES", 64 * 1024 * 1024, _INT)  # RunPod's callback carries the output
    # Files (integration/files/): where uploads and file results live, and when an upload stops going inline.
    files_url: str = setting("FILES_URL", "", ("s3://bucket/prefix or file:///path", _files_url, str))  # unset: DATA_DIR/files
    inline_input_max: int = setting("INLINE_INPUT_MAX", 1024 * 1024, _INT)  # a larger upload reaches the worker as a URL
    upload_max_bytes: int = setting("UPLOAD_MAX_BYTES", 100 * 1024 * 1024, _INT)  # request body of the routes that take a file
    files_sweep_interval: float = setting("FILES_SWEEP_INTERVAL", 3600.0, _FLOAT)  # seconds between sweeps of expired jobs' files
    # Tracking: how often jobs are checked at RunPod, and how hard RunPod may be hit.
    status_budget_per_10s: int = setting("RUNPOD_STATUS_BUDGET", 1600, _INT)  # RunPod allows 2,000 per 10 s per endpoint
    run_budget_per_10s: int = setting("RUNPOD_RUN_BUDGET", 800, _INT)  # RunPod allows 1,000 per 10 s per endpoint
    poll_min_interval: float = setting("POLL_MIN_INTERVAL", 0.5, _FLOAT)
    poll_max_interval: float = setting("POLL_MAX_INTERVAL", 30.0, _FLOAT)
    callback_poll_after: float = setting("CALLBACK_POLL_AFTER", 120.0, _FLOAT)  # with callbacks on, the confirming poll
    price_table: str = setting("PRICE_TABLE", "")  # JSON overrides of the registry's unit prices
    model_aliases: dict | None = setting(
        "MODEL_ALIASES", None, ("a JSON object of surfaces, each of alias: model", _aliases, lambda v: json.dumps(v) if v else "")
    )
    ready_max_overdue: int = setting("READY_MAX_OVERDUE", 10_000, _INT)  # /readyz fails past this backlog
    prefer_wait_max: float = setting("PREFER_WAIT_MAX", 60.0, _FLOAT)  # the longest `Prefer: wait` honoured
    held_per_key: int = setting("HELD_PER_KEY", 100, _INT)  # requests held open per key, all web processes
    hold_max_seconds: float = setting("HOLD_MAX_SECONDS", 3600.0, _FLOAT)  # the longest a stream stays open
    openai_wait_max: float = setting("OPENAI_WAIT_MAX", 300.0, _FLOAT)  # how long an OpenAI-mode request is held
    mcp_enabled: bool = setting("MCP_ENABLED", True, "flag")  # the MCP server at /mcp
    circuit_failures: int = setting(
        "CIRCUIT_FAILURES", 5, _INT
    )  # consecutive /run failures that open an endpoint's circuit (0: never)
    circuit_cooldown: float = setting("CIRCUIT_COOLDOWN", 30.0, _FLOAT)  # how long it stays open before a probe
    mcp_tool_wait: float = setting(
        "MCP_TOOL_WAIT", 60.0, _FLOAT
    )  # how long an MCP surface tool waits before answering the job id
    # A router in front that ends a request with no first byte after this many seconds
    # (Heroku's 30 s, H12); 0: none, unless DYNO says Heroku's router is there.
    router_timeout: float = setting("ROUTER_TIMEOUT", 0.0, _FLOAT)
    dyno: str = setting("DYNO", "")  # set by Heroku on every dyno
    # How long a worker holds a job it works on (and a submission lock): longer than any
    # one RunPod call. When a worker dies, its jobs resume after this.
    lease_seconds: float = setting("LEASE_SECONDS", 60.0, _FLOAT)
    retry_base: float = setting("RUNPOD_RETRY_BASE", 1.0, _FLOAT)  # RunPod unavailable: base * 2^attempt, at most 10 min
    tracker_concurrency: int = setting("TRACKER_CONCURRENCY", 32, _INT)
    # A job RunPod would not take (unavailable, or refusing podrelay's key) fails after this.
    submit_give_up_after: float = setting("SUBMIT_GIVE_UP_AFTER", 3600.0, _FLOAT)
    runpod_timeout: tuple[float, float] = (5.0, 30.0)  # connect, read: not a variable
    # Per-key defaults (a key's own limits, set by `keys limits`, win); 0 / None: unlimited.
    rate_limit_per_minute: int = setting("RATE_LIMIT_PER_MINUTE", 600, _INT)
    jobs_in_flight_limit: int = setting("MAX_JOBS_IN_FLIGHT", 1000, _INT)
    monthly_budget: float | None = setting("MONTHLY_BUDGET", None, "optional float")  # USD
    idempotency_ttl: int = setting("IDEMPOTENCY_TTL", 24 * 3600, _INT)  # how long a POST's answer is kept
    metrics_token: str = setting("METRICS_TOKEN", "")  # when set, /metrics wants it as a Bearer token
    log_level: str = setting("LOG_LEVEL", "INFO")
    log_format: str = setting("LOG_FORMAT", "")  # json | text; unset: text in development, else json

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
        """Read settings from `env` (default: the process environment); `SettingError` names a bad one."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for name, variable in variables().items():
            raw = env.get(variable.name)
            if raw is None or raw == "":
                continue
            try:
                values[name] = variable.parse(raw)
            except ValueError:
                raise SettingError(f"{variable.name}={raw!r} is not valid: expected {variable.expects}") from None
        for name, prefix in PREFIXED.items():
            values[name] = {n[len(prefix) :].upper(): v.strip() for n, v in env.items() if n.startswith(prefix) and v.strip()}
        settings = cls(**values)
        if not settings.secret_key and settings.environment == "development":
            settings = replace(settings, secret_key=DEVELOPMENT_SECRET)  # said so: a machine of one's own
        return settings

    def require_secret(self) -> None:
        """Refuse, with one line, to serve or work without SECRET_KEY: callback tokens and download
        links would be signed with a value anyone can read. (The keys CLI needs none.)"""
        if not self.secret_key:
            raise SettingError(
                "SECRET_KEY must be set (e.g. SECRET_KEY=$(openssl rand -hex 32)); "
                "only PODRELAY_ENV=development runs with a public development secret"
            )

    def to_env(self) -> dict[str, str]:
        """The environment variables that make `from_env` read these settings again."""
        env = {variable.name: variable.text(getattr(self, name)) for name, variable in variables().items()}
        for name, prefix in PREFIXED.items():
            env.update({f"{prefix}{key}": value for key, value in getattr(self, name).items()})
        return env

    @property
    def redis_address(self) -> str | None:
        """The Redis to use: REDIS_TLS_URL, else REDIS_URL; None: the embedded one."""
        return self.redis_tls_url or self.redis_url

    @property
    def first_byte_within(self) -> float | None:
        """Seconds within which a held request must send its first byte (the router's limit,
        less a margin); None when no router limits it."""
        limit = self.router_timeout or (30.0 if self.dyno else 0.0)
        return max(limit - ROUTER_MARGIN, 1.0) if limit else None

    def held(self, seconds: float) -> float:
        """`seconds` of holding a request before answering, shortened to fit under the router."""
        within = self.first_byte_within
        return min(seconds, within) if within else seconds

    def with_changes(self, **changes) -> Settings:
        """A copy with some settings replaced (tests use it)."""
        return replace(self, **changes)

    def endpoint_for(self, surface: str, model: str) -> str | None:
        """The RunPod endpoint id for a surface and model: a per-model setting wins."""
        return _per_surface(self.endpoints, surface, model)

    def worker_for(self, surface: str, model: str) -> str | None:
        """The worker set for a surface and model's endpoint (a per-model setting wins), or None."""
        return _per_surface(self.workers, surface, model)

    def comfyui_workflow_for(self, surface: str, model: str) -> str | None:
        """The worker-comfyui workflow set for a surface and model, or None."""
        return _per_surface(self.comfyui_workflows, surface, model)


def _per_surface(values: dict[str, str], surface: str, model: str) -> str | None:
    surface_key = surface.upper()
    return values.get(f"{surface_key}__{_model_key(model)}") or values.get(surface_key)


@functools.lru_cache(maxsize=4096)
def _model_key(model: str) -> str:
    """A model's name as a variable's suffix (`RUNPOD_ENDPOINT_CHAT__<MODEL>`): asked twice per accepted job."""
    return re.sub(r"[^A-Z0-9]", "_", model.upper())


def variables() -> dict[str, Variable]:
    """Each `Settings` field read from the environment, with its variable."""
    return {f.name: f.metadata["variable"] for f in fields(Settings) if "variable" in f.metadata}
