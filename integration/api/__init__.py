"""The HTTP blueprints, and the request plumbing they share (request ids, JSON bodies)."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time

from flask import Flask, g, request

from integration import logs
from integration.errors import ApiError

log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def json_body() -> dict:
    """The request's JSON object, or a 415/400 in the error envelope."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Content-Type must be application/json")
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: werkzeug raises 413
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "Request body must be a JSON object")
    return body


def init_app(app: Flask) -> None:
    """Give every request an id (the client's `X-Request-Id` when sane) and mount the routes."""
    from integration.api import (
        account,
        admission,
        callbacks,
        docs,
        downloads,
        enqueue,
        events,
        health,
        jobs,
        openai,
        runpod_routes,
        webhooks,
    )

    @app.before_request
    def _request_id():
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else "req_" + secrets.token_hex(12)
        g.log_ids = logs.bind(request_id=g.request_id)

    @app.teardown_request
    def _unbind(_error):
        if "log_ids" in g:
            logs.unbind(g.pop("log_ids"))

    @app.after_request
    def _echo_request_id(response):
        response.headers["X-Request-Id"] = getattr(g, "request_id", "")
        # The path and query are the client's: the log formatter escapes and masks them.
        if log.isEnabledFor(logging.INFO):  # the enqueue route's hot path: no path work when not logged
            log.info("%s %s -> %d", request.method, request.full_path.rstrip("?"), response.status_code)
        metrics = app.extensions["podrelay"].metrics
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.inc("podrelay_http_requests_total", route=route, method=request.method, status=str(response.status_code))
        if "started" in g:
            metrics.observe("podrelay_http_request_duration_seconds", time.perf_counter() - g.started, route=route)
        return response

    admission.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(enqueue.bp, url_prefix="/v1")
    app.register_blueprint(jobs.bp, url_prefix="/v1")
    app.register_blueprint(account.bp, url_prefix="/v1")
    app.register_blueprint(events.bp, url_prefix="/v1")
    events.sock.init_app(app)
    app.register_blueprint(webhooks.bp, url_prefix="/v1")
    app.register_blueprint(openai.bp, url_prefix="/openai/v1")
    app.register_blueprint(runpod_routes.bp, url_prefix="/v1")
    app.register_blueprint(callbacks.bp)
    app.register_blueprint(downloads.bp)
    app.register_blueprint(downloads.keyed, url_prefix="/v1")
