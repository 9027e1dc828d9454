"""Health: `GET /healthz` (the process serves) and `GET /readyz` (jobs can be taken and
finished: Redis, live workers, no large backlog). Neither needs a key."""

from __future__ import annotations

import redis
from flask import Blueprint, current_app, jsonify

from integration.readiness import readiness

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
