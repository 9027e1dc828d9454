"""What a view reads beside its own arguments: this process's resources, the caller, the JSON body."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

import orjson
from flask import current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from integration import resources as root
from integration.accounts.keys import Caller, is_live
from integration.errors import ApiError
from integration.resources import Resources


def resources() -> Resources:
    """The resources of the app serving this request."""
    return root.of(current_app)


def caller() -> Caller:
    """The API key making this request, with its limits (set by admission)."""
    ctx = g._get_current_object()
    return Caller(ctx.key_id, ctx.limits, ctx.get("admin", False), ctx.get("rate_count"))


MAX_DEPTH = 64  # objects and arrays within each other
_LONG_INTEGER = re.compile(rb"\d{19}")  # orjson reads an integer past 64 bits as a float; json keeps it


def alive() -> Callable[[], bool]:
    """For a held request or a stream: whether the caller's key is still valid (asked every few seconds)."""
    res, key_id = resources(), g.key_id
    return lambda: is_live(res.redis, key_id)


def hold(seconds: float) -> Callable[[], None]:
    """Count this request among the caller's held connections (a 429 past `HELD_PER_KEY`) for up
    to `seconds`; the function that gives the hold back when the request ends."""
    res, key_id = resources(), g.key_id
    taken = res.holds.take(key_id, res.settings.held_per_key, seconds)
    return lambda: res.holds.give_back(key_id, taken)


def json_body() -> dict:
    """The request's JSON object, or a 415/400 in the error envelope.

    Refused with a 400 naming the field: a string with a lone UTF-16 surrogate (it cannot be
    stored or sent on), `NaN` and `Infinity` (not JSON, and not sendable to RunPod), and
    nesting deeper than `MAX_DEPTH`."""
    # The usual header, seen at once; any other is werkzeug's to judge (`+json` types, parameters).
    if request.environ.get("CONTENT_TYPE") != "application/json" and not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Content-Type must be application/json")
    raw = body_bytes()
    if not _LONG_INTEGER.search(raw):
        # The fast reader, for a body it takes: orjson refuses NaN, Infinity, lone surrogates and
        # any other input json would read differently, and those are read by json below.
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH:  # it could be nested too deep
                _check(body, "", 0)
            return body
    try:
        body = json.loads(raw)  # NaN and Infinity parse here, and are refused below with their field's name
    except RecursionError:
        raise ApiError(400, "invalid_json", f"Request body is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "Request body must be a JSON object")
    _check(body, "", 0)
    return body


def body_bytes() -> bytes:
    """The request's body, as `request.get_data(cache=True)` gives it (and then gives again),
    or a 413 when it is longer than MAX_CONTENT_LENGTH (or the route's own limit).

    Read here from the server's stream in one read, and kept where `get_data` keeps it:
    - a body of the length it states, within the limit: werkzeug reads it through a limited
      stream in pieces, 8 µs of the accept route;
    - a chunked body (the server de-chunks it): werkzeug reads it up to the limit and stops
      there without a word, so one past the limit came to a view cut short (a 400 for JSON
      that ends mid-way) instead of its 413. Read one byte past the limit, it is refused.
    Any other (a stated length past the limit: werkzeug's 413; already read) is werkzeug's."""
    req = request._get_current_object()
    environ, kept = req.environ, req.__dict__
    if kept.get("_cached_data") is None and "stream" not in kept:  # unread (werkzeug's stream may have been read from)
        length, limit = environ.get("CONTENT_LENGTH", ""), req.max_content_length
        stated = length.isascii() and length.isdigit() and "HTTP_TRANSFER_ENCODING" not in environ
        if stated and (limit is None or int(length) <= limit):
            req._cached_data = environ["wsgi.input"].read(int(length))
        elif not length and limit is not None and environ.get("wsgi.input_terminated"):
            data = environ["wsgi.input"].read(limit + 1)
            if len(data) > limit:
                raise RequestEntityTooLarge()
            req._cached_data = data
    return req.get_data(cache=True)  # over MAX_CONTENT_LENGTH: werkzeug raises 413


def _check(value, path: str, depth: int) -> None:
    """Walk the body: nesting, unencodable strings and non-finite numbers, each named by its path."""
    if depth > MAX_DEPTH:
        raise ApiError(400, "invalid_json", f"Request body is nested more than {MAX_DEPTH} levels deep", param=path or None)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(
                400, "validation_error", f"Invalid value for '{path}': not valid Unicode (a lone surrogate)", param=path
            ) from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise ApiError(
            400, "validation_error", f"Invalid value for '{path}': NaN and Infinity are not numbers in JSON", param=path
        )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, path, depth + 1)
            _check(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", depth + 1)
