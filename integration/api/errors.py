"""Where every failure becomes the error envelope: the one place errors are rendered.

Nothing a client sends may produce a bare 500 page or a traceback: ApiErrors, werkzeug's
HTTP errors, a Redis outage and anything unexpected all end here.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException

from integration.errors import ApiError
from integration.redis.connection import redis_problem

log = logging.getLogger(__name__)

# Werkzeug's HTTP errors, mapped to the envelope's codes.
_HTTP_CODES = {
    400: ("bad_request", "The request could not be understood"),
    404: ("not_found", "No such route"),
    405: ("method_not_allowed", "Method not allowed on this route"),
    413: ("request_too_large", "Request body is too large"),
    415: ("unsupported_media_type", "Content-Type must be application/json"),
    422: ("unprocessable", "The request could not be processed"),
}


def render(error: ApiError):
    """The Flask response for an ApiError."""
    response = jsonify(error.to_dict(getattr(g, "request_id", None)))
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """Register the handlers that turn every failure into the envelope."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return render(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        code, message = _HTTP_CODES.get(error.code or 500, ("http_error", error.name))
        api_error = ApiError(error.code or 500, code, message)
        response = render(api_error)
        if error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _redis_down(error: Exception):
        log.error("redis unavailable: %s", redis_problem(error) or error)
        return render(ApiError(503, "service_unavailable", "Job store unavailable, retry shortly", headers={"Retry-After": "5"}))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error")
        return render(ApiError(500, "internal_error", "Internal error; the request id identifies it in the logs"))
