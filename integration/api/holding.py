"""Answers held until a job ends, for clients that cannot follow a 202 (OpenAI mode, the
Responses API): the finished job rendered, or OpenAI-style errors when it failed or is still
running. Behind a router with a first-byte limit (Heroku's 30 s), a long job's answer is
kept alive with spaces (JSON allows leading whitespace).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from flask import Response, stream_with_context

from integration.api.context import alive, hold, resources
from integration.api.errors import render as render_error
from integration.errors import ApiError
from integration.jobs.record import Job, JobStatus

KEEP_ALIVE_EVERY = 10.0  # seconds between the spaces of a response kept alive behind a router


def _outcome(job: Job, done: Job | None, still_allowed: Callable[[], bool]) -> Job:
    """The finished job; OpenAI-style errors when it failed, is still running, or its key went."""
    no_retry = {"x-should-retry": "false"}
    if done is None and not still_allowed():
        raise ApiError(401, "invalid_api_key", f"The API key was revoked while job {job.id} ran")
    if done is None:
        raise ApiError(504, "timeout", f"Job {job.id} is still running; follow it at /v1/jobs/{job.id}", headers=no_retry)
    if done.status != JobStatus.COMPLETED:
        message = (done.error or {}).get("message") or f"Job ended {done.status.value}"
        raise ApiError(502, "provider_error", f"Upstream provider returned error: {message}", headers=no_retry)
    return done


def answer(job: Job, render: Callable[[Job], Response], keep_alive: bool = True) -> Response:
    """`render` of the job once it ends, held up to OPENAI_WAIT_MAX.

    Behind a router that ends requests with no first byte (Heroku's 30 s), a job not done
    by then is answered 200 at once, with a space every few seconds (JSON allows leading
    whitespace) and then the body; an error that comes after is the error envelope in that
    200's body. Without `keep_alive` (a plain-text body) the wait stops under the router's
    limit with a 504 naming the job.
    """
    res = resources()
    total, within = res.settings.openai_wait_max, res.settings.first_byte_within
    release, still_allowed = hold(total), alive()
    first, kept = (min(total, within) if within else total), False
    try:
        done = res.waiter.wait_for_end(res.jobs, job.id, first, still_allowed)
        if done is not None or not still_allowed() or not keep_alive or first >= total:
            return render(_outcome(job, done, still_allowed))
        kept = True  # the kept-alive body releases the hold when it ends
    finally:
        if not kept:
            release()
    return _kept_alive(job, render, total - first, release, still_allowed)


def _kept_alive(job: Job, render, seconds: float, release, still_allowed) -> Response:
    res = resources()

    def body():
        try:
            deadline = time.monotonic() + seconds
            done = None
            while done is None and still_allowed():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                yield b" "
                done = res.waiter.wait_for_end(res.jobs, job.id, min(KEEP_ALIVE_EVERY, left), still_allowed)
            try:
                yield render(_outcome(job, done, still_allowed)).get_data()
            except ApiError as error:
                yield render_error(error).get_data()
        finally:
            release()

    return Response(stream_with_context(body()), mimetype="application/json", headers={"X-Accel-Buffering": "no"})


def event_stream(relay: Callable[[], Iterator[str]], release: Callable[[], None]) -> Response:
    """Server-Sent Events from `relay()`, the caller's hold given back when they end (or the client goes)."""

    def events():
        try:
            yield from relay()
        finally:
            release()

    response = Response(events(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # proxies must not hold the events back
    return response
