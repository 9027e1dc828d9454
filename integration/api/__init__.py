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
        ctx = g._get_current_object()  # the request's own objects, not a proxy lookup per use
        ctx.started = time.perf_counter()
        # The header as werkzeug's `request.headers` reads it, without its per-call name rewriting.
        incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
        # Ids name requests, they grant nothing: the process's random generator (reseeded in every fork) will do.
        ctx.request_id = incoming if incoming and _REQUEST_ID.match(incoming) else f"req_{random.getrandbits(96):024x}"
        ctx.log_ids = logs.bind(request_id=ctx.request_id)

    @app.teardown_request
    def _unbind(_error):
        token = g.pop("log_ids", None)
        if token is not None:
            logs.unbind(token)

    @app.after_request
    def _echo_request_id(response):
        ctx, req = g._get_current_object(), request._get_current_object()
        response.headers["X-Request-Id"] = getattr(ctx, "request_id", "")
        # The path and query are the client's: the log formatter escapes and masks them.
        if log.isEnabledFor(logging.INFO):  # the enqueue route's hot path: no path work when not logged
            log.info("%s %s -> %d", req.method, req.full_path.rstrip("?"), response.status_code)
        started = getattr(ctx, "started", None)
        took = None if started is None else time.perf_counter() - started
        rule = req.url_rule
        of(app).metrics.answered(rule.rule if rule else "unmatched", req.method, response.status_code, took)
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
