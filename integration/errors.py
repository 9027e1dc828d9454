"""API errors as values, rendered in one envelope everywhere.

The envelope is OpenAI's (`{"error": {"message", "type", "code", "param"}}`) plus a
`request_id`, as DESIGN.md, "Errors", fixes it. Nothing a client sends may produce a
bare 500 page or a traceback: every exception ends here.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, g, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

_TYPE_BY_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable code, a message and the field it concerns."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        headers: dict | None = None,
        details: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.details = details

    @property
    def type(self) -> str:
        if self.status >= 500:
            return "api_error"
        return _TYPE_BY_STATUS.get(self.status, "invalid_request_error")

    def to_dict(self, request_id: str | None = None) -> dict:
        body = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
            "param": self.param,
            "request_id": request_id,
        }
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


def validation_error(message: str, param: str | None) -> ApiError:
    return ApiError(400, "validation_error", message, param=param)


def not_found(what: str = "Resource") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


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
        log.error("redis unavailable: %s", error)
        return render(ApiError(503, "service_unavailable", "Job store unavailable, retry shortly", headers={"Retry-After": "5"}))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error")
        return render(ApiError(500, "internal_error", "Internal error; the request id identifies it in the logs"))
