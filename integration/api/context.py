"""What a view reads beside its own arguments: this process's resources, the caller, the JSON body."""

from __future__ import annotations

import json

from flask import current_app, g, request

from integration import resources as root
from integration.accounts.keys import Caller
from integration.errors import ApiError
from integration.resources import Resources


def resources() -> Resources:
    """The resources of the app serving this request."""
    return root.of(current_app)


def caller() -> Caller:
    """The API key making this request, with its limits (set by admission)."""
    return Caller(g.key_id, g.limits)


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
