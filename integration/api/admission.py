"""What every keyed request passes before its view: the API key, the rate limit, and (on
POST) the idempotency key. And what every keyed answer carries after it: the rate-limit
headers, and, for a POST with an idempotency key, its answer kept for replay.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from flask import Flask, Request, Response, g, request

from integration import surfaces
from integration.accounts.idempotency import MAX_KEY_LENGTH, REPLAYED_HEADERS, fingerprint
from integration.accounts.keys import lookup
from integration.accounts.ratelimit import RateCount, RateExceeded, RateLimiter, RateState
from integration.api.context import body_bytes, resources
from integration.errors import ApiError, validation_error
from integration.jobs.waiting import preferred_wait
from integration.resources import Resources

log = logging.getLogger(__name__)
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")
# The routes that store a job: their request is counted against the rate limit in the same
# Redis script that stores the job, one round trip for both.
COUNTED_WITH_THE_JOB = frozenset(
    {f"enqueue.enqueue_{name}" for name in surfaces.SURFACES}
    | {"openai.chat_completions", "openai.embeddings", "openai.image_generations", "openai.audio_transcriptions"}
    | {"responses.create_response"}
)
# The routes whose body may carry a file (a data URI, a multipart upload): UPLOAD_MAX_BYTES, not MAX_BODY_BYTES.
UPLOAD_ROUTES = frozenset(
    {f"enqueue.{kind}_{s.name}" for s in surfaces.SURFACES.values() if s.file_params for kind in ("enqueue", "price")}
    | {"openai.audio_transcriptions"}
)


def admit() -> Response | None:
    """Authenticate, count the request, and replay or claim its idempotency key."""
    req, res = request._get_current_object(), resources()
    ctx = _authenticate(req, res)
    _count_request(ctx, req, res)
    if req.method == "POST":
        if req.endpoint in UPLOAD_ROUTES:
            req.max_content_length = res.settings.upload_max_bytes
        return _claim_idempotency_key()
    return None


def require_api_key() -> None:
    """Set `g.key_id` and `g.limits` from the Bearer token, or raise 401 `invalid_api_key`."""
    _authenticate(request._get_current_object(), resources())


def _authenticate(req: Request, res: Resources) -> Any:
    """`require_api_key`, given the request and the resources; the request's `g`."""
    header = req.environ.get("HTTP_AUTHORIZATION", "")  # `request.headers`' value, read directly
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "invalid_api_key", "Missing API key: send Authorization: Bearer <api-key>")
    found = lookup(res.redis, token.strip(), res.settings, res.commits)
    if found is None:
        raise ApiError(401, "invalid_api_key", "Invalid API key provided")
    ctx = g._get_current_object()
    ctx.key_id, ctx.limits, ctx.admin = found.key_id, found.limits, found.admin
    return ctx


def _count_request(ctx: Any, req: Request, res: Resources) -> None:
    limit = ctx.limits.requests_per_minute
    if limit is None:
        return
    limiter = res.rate_limiter
    # Counted by the write that stores the job (or after, see `_after`); a key this process saw
    # at its limit is counted first, so it is refused before its request is read.
    if req.endpoint in COUNTED_WITH_THE_JOB and not limiter.seen_full(ctx.key_id):
        ctx.rate_count = RateCount(limit)
        return
    ctx.rate = limiter.hit(ctx.key_id, limit)
    if not ctx.rate.admitted:
        raise RateExceeded(ctx.rate)


def _claim_idempotency_key() -> Response | None:
    key = request.environ.get("HTTP_IDEMPOTENCY_KEY")  # `request.headers`' value, read directly
    if key is None:
        return None
    if len(key) > MAX_KEY_LENGTH or not _PRINTABLE.match(key):
        raise validation_error(
            f"Invalid 'Idempotency-Key' header: 1 to {MAX_KEY_LENGTH} printable ASCII characters, no spaces.", "Idempotency-Key"
        )
    store = resources().idempotency
    record = store.record(g.key_id, key)
    request_fingerprint = fingerprint(request.method, request.path, request.query_string, body_bytes())
    state, stored = store.begin(record, request_fingerprint, _longest_hold())
    if state == "mismatch":
        message = "This Idempotency-Key was used with a different request; keys can only be reused with the same request"
        raise ApiError(422, "idempotency_key_reused", message, param="Idempotency-Key")
    if state == "busy":
        message = "A request with this Idempotency-Key is still being answered; retry when it has been"
        raise ApiError(409, "idempotency_key_in_use", message, param="Idempotency-Key", headers={"Retry-After": "1"})
    if stored is not None:
        response = Response(stored.body, status=stored.status, headers=stored.headers)
        response.headers["Idempotent-Replayed"] = "true"
        return response
    g.idempotency_record = record
    return None


def _longest_hold() -> int:
    """How long this request may be held before it is answered, plus a margin: its claim's life,
    so a retry is not refused for long when the process answering it died."""
    settings = resources().settings
    if request.path.startswith("/openai/"):
        held = settings.openai_wait_max
    elif request.path.startswith("/v1/runpod/"):
        held = 300  # runsync's longest wait
    else:
        held = preferred_wait(request.headers.get("Prefer"), settings.prefer_wait_max) or 0
    return int(held) + 30


def _counted_after(count: RateCount | None, limiter: RateLimiter, key_id: str) -> RateState | None:
    """The rate state of a request left to its job's write: counted there, or, when it ended
    before storing a job (invalid, refused, replayed), counted now, so every request counts."""
    if count is None or count.state is not None:
        return count.state if count else None
    try:
        state = limiter.hit(key_id, count.limit)
    except redis.exceptions.RedisError as error:  # its answer stands; the headers are left out
        log.warning("request not counted against the rate limit: %s", error)
        return None
    return state._replace(admitted=True)  # its answer is decided: no Retry-After on it


def init_app(app: Flask) -> None:
    """Add the rate-limit headers to every keyed answer; keep idempotent answers."""

    @app.after_request
    def _after(response: Response) -> Response:
        ctx = g._get_current_object()
        rate, count = ctx.get("rate"), ctx.get("rate_count")
        if rate is not None or count is not None:
            limiter = resources().rate_limiter
            rate = rate or _counted_after(count, limiter, ctx.key_id)
            # A refusal is this very count's 429, which carries them already; any other answer
            # gets them added (werkzeug's `update` scans every header for each one it sets, and
            # asking `in` of a missing one raises and catches a KeyError).
            if rate is not None:
                if rate.admitted:
                    headers = response.headers
                    for name, value in rate.headers().items():
                        headers.add(name, value)
                limiter.note(ctx.key_id, rate)
        record = ctx.pop("idempotency_record", None)
        if record is not None:
            body = None if response.is_streamed else response.get_data()
            headers = {name: response.headers[name] for name in REPLAYED_HEADERS if name in response.headers}
            resources().idempotency.finish(record, response.status_code, headers, body)
        return response
