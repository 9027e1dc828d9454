"""A job's events, streamed: `GET /v1/jobs/{id}/events` (Server-Sent Events, reconnect
with `Last-Event-ID`) and the same events over a WebSocket at `/v1/jobs/{id}/ws`.

Each holds one connection slot of the web process (a greenlet) while open. The WebSocket takes the API key in the
`Authorization` header of the upgrade request, as server-side clients send it.
"""

from __future__ import annotations

import json
import time

from flask import Blueprint, Response, g, request
from flask_sock import Sock

from integration.api.admission import admit
from integration.api.context import alive, hold, resources
from integration.jobs.streaming import job_events, valid_event_id

bp = Blueprint("events", __name__)
bp.before_request(admit)
sock = Sock()


@bp.get("/jobs/<job_id>/events")
def job_event_stream(job_id: str):
    """`GET /v1/jobs/{id}/events`: Server-Sent Events until the job ends."""
    res = resources()
    job = res.jobs.owned(job_id, g.key_id)
    header = request.headers.get("Last-Event-ID")
    after = valid_event_id(header or request.args.get("last_event_id"), "Last-Event-ID" if header else "last_event_id")
    seconds = res.settings.hold_max_seconds
    release, still_allowed = hold(seconds), alive()

    def stream():
        try:
            yield "retry: 2000\n\n"
            yield from _sse(job_events(res.jobs, res.waiter, job, after, time.monotonic() + seconds, still_allowed))
        finally:
            release()  # however the stream ends

    def _sse(events):
        for event in events:
            if event.name == "keepalive":
                yield ": keepalive\n\n"
                continue
            lines = [f"id: {event.id}"] if event.id else []
            lines += [f"event: {event.name}", f"data: {json.dumps(event.data, separators=(',', ':'))}"]
            yield "\n".join(lines) + "\n\n"

    response = Response(stream(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@bp.before_request
def _own_before_upgrade():
    """A WebSocket to another key's job is refused with a 404 before the upgrade, not inside the socket."""
    if request.endpoint == "events.job_event_socket":
        resources().jobs.owned(request.view_args["job_id"], g.key_id)


@sock.route("/jobs/<job_id>/ws", bp=bp)
def job_event_socket(ws, job_id: str):
    """`/v1/jobs/{id}/ws`: the same events over a WebSocket."""
    res = resources()
    job = res.jobs.owned(job_id, g.key_id)
    after = valid_event_id(request.args.get("last_event_id"), "last_event_id")
    seconds = res.settings.hold_max_seconds
    release = hold(seconds)
    try:
        for event in job_events(res.jobs, res.waiter, job, after, time.monotonic() + seconds, alive()):
            if event.name != "keepalive":
                ws.send(json.dumps({"event": event.name, "id": event.id, "data": event.data}, separators=(",", ":")))
    finally:
        release()
    ws.close()
