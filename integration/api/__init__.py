"""The HTTP layer: blueprints that parse, call a domain, and answer; request ids; one place
that renders errors (`errors.py`). Nothing else in podrelay imports Flask."""

from __future__ import annotations

import logging
import random
import re
import time

from flask import Flask, g, request

from integration import logs
from integration.resources import of

log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def init_app(app: Flask) -> None:
    """Render errors in the envelope, give every request an id (the client's `X-Request-Id`
    when sane), count it, and mount the routes."""
    from integration.api import (
        account,
        admission,
        callbacks,
        console,
        docs,
        downloads,
        enqueue,
        errors,
        events,
        health,
        jobs,
        mcp_proxy,
        openai,
        responses,
        runpod_routes,
        webhooks,
    )

    @app.before_request
    def _request_id():
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-Id", "")
        # Ids name requests, they grant nothing: the process's random generator (reseeded in every fork) will do.
        g.request_id = incoming if _REQUEST_ID.match(incoming) else f"req_{random.getrandbits(96):024x}"
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
        metrics = of(app).metrics
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.inc("podrelay_http_requests_total", route=route, method=request.method, status=str(response.status_code))
        if "started" in g:
            metrics.observe("podrelay_http_request_duration_seconds", time.perf_counter() - g.started, route=route)
        return response

    errors.init_app(app)
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
    app.register_blueprint(responses.bp, url_prefix="/openai/v1")
    app.register_blueprint(runpod_routes.bp, url_prefix="/v1")
    app.register_blueprint(callbacks.bp)
    app.register_blueprint(downloads.bp)
    app.register_blueprint(downloads.keyed, url_prefix="/v1")
    app.register_blueprint(mcp_proxy.bp)
    app.register_blueprint(console.bp, url_prefix="/console")
