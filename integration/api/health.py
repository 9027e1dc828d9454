"""Operations: `GET /healthz` (the process serves), `GET /readyz` (jobs can be taken and
finished: Redis, live workers, no large backlog), `GET /metrics` (Prometheus). No API
key; `/metrics` takes `METRICS_TOKEN` as a Bearer token when one is set."""

from __future__ import annotations

import hmac

import redis
from flask import Blueprint, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from integration.api.context import resources
from integration.errors import ApiError
from integration.metrics import registry as shared_registry
from integration.readiness import gauges, readiness
from integration.redis.connection import AT_LIMIT, redis_problem

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Liveness: the process serves."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Readiness: 200 when jobs can be taken and finished, else 503 with the reasons."""
    res = resources()
    try:
        ready, checks = readiness(res.redis, res.settings.ready_max_overdue)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
        problem = redis_problem(error)
        state = {None: f"unreachable: {type(error).__name__}", AT_LIMIT: "connection_limit"}.get(problem, "tls_failed")
        ready, checks = False, {"redis": state, "problems": [problem or "Redis does not answer"]}
    response = jsonify({"status": "ready" if ready else "not_ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


@bp.get("/metrics")
def metrics():
    """Prometheus text format: the counters every process shares in Redis, and live gauges."""
    res = resources()
    token = res.settings.metrics_token
    if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
        raise ApiError(401, "invalid_api_key", "/metrics needs Authorization: Bearer <METRICS_TOKEN>")
    res.metrics.flush()  # this process's last second too
    registry = shared_registry(res.redis, lambda: gauges(res.redis))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
