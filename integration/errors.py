"""API errors as values: a status, a stable code, a message and the field at fault.

Raised where a failure is known, anywhere below the HTTP layer; rendered in one place
(`integration/api/errors.py`) in OpenAI's envelope plus a `request_id`, as DESIGN.md,
"Errors", fixes it.
"""

from __future__ import annotations

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
        """The envelope's `type`, from the status (OpenAI's names)."""
        if self.status >= 500:
            return "api_error"
        return _TYPE_BY_STATUS.get(self.status, "invalid_request_error")

    def to_dict(self, request_id: str | None = None) -> dict:
        """The envelope: `{"error": {"message", "type", "code", "param", "request_id"[, "details"]}}`."""
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
    """A 400 `validation_error` naming the field."""
    return ApiError(400, "validation_error", message, param=param)


def not_found(what: str = "Resource") -> ApiError:
    """A 404 `not_found` (also what another key's object looks like)."""
    return ApiError(404, "not_found", f"{what} not found")
