"""Operations: `GET /healthz` (the process serves), `GET /readyz` (jobs can be taken and
finished: Redis, live workers, no large backlog), `GET /metrics` (Prometheus). No API
key; `/metrics` takes `METRICS_TOKEN` as a Bearer token when one is set."""

from __future__ import annotations

import hmac

import redis
from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from integration.errors import ApiError
from integration.metrics import registry as shared_registry
from integration.readiness import gauges, readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    resources = current_app.extensions["podrelay"]
    try:
        ready, checks = readiness(resources.redis, resources.settings.ready_max_overdue)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
        ready, checks = False, {"redis": f"unreachable: {type(error).__name__}", "problems": ["Redis does not answer"]}
    response = jsonify({"status": "ready" if ready else "not_ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


@bp.get("/metrics")
def metrics():
    """Prometheus text format: the counters every process shares in Redis, and live gauges."""
    resources = current_app.extensions["podrelay"]
    token = resources.settings.metrics_token
    if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
        raise ApiError(401, "invalid_api_key", "/metrics needs Authorization: Bearer <METRICS_TOKEN>")
    resources.metrics.flush()  # this process's last second too
    registry = shared_registry(resources.redis, lambda: gauges(resources.redis))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
