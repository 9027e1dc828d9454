"""OpenAI's Responses API under `/openai/v1`: `POST /responses` (held until done, streamed as
Responses events, or `background: true`), `GET /responses/{id}`, `POST /responses/{id}/cancel`.

A response is a tracked chat job (`integration/surfaces/responses.py` maps the shapes):
webhooks fire for it and `GET /v1/jobs` lists it. The event stream follows the SDK's
event types (openai-python `types/responses/response_stream_event.py`): `response.created`,
`response.in_progress`, `response.output_item.added`, `response.content_part.added`,
`response.output_text.delta`..., then the `.done` events and `response.completed` (or
`response.failed`), each with its `sequence_number`.
"""

from __future__ import annotations

import time

import orjson
from flask import Blueprint, Response, g, jsonify

from integration import surfaces
from integration.api.admission import admit
from integration.api.context import alive, caller, hold, json_body, resources
from integration.api.holding import answer, event_stream
from integration.errors import ApiError, not_found
from integration.jobs.accept import accept
from integration.jobs.record import Job
from integration.jobs.streaming import job_events
from integration.jobs.tasks import cancel
from integration.surfaces import responses as shapes
from integration.surfaces.fields import load

bp = Blueprint("responses", __name__)
bp.before_request(admit)
_schema = shapes.ResponsesSchema()


def _shown(job: Job) -> dict:
    return shapes.response_object(resources().jobs.shown(job), job.shape or {})


@bp.post("/responses")
def create_response():
    """`POST /openai/v1/responses`."""
    request_data = load(_schema, json_body())
    job = accept(
        resources(),
        caller(),
        g.request_id,
        surfaces.get("chat"),
        shapes.chat_request(request_data),
        shape=shapes.echo(request_data),
    )
    if request_data.get("background"):
        return jsonify(_shown(job))
    if request_data.get("stream"):
        return _stream(job)
    return answer(job, lambda done: jsonify(_shown(done)))


def _owned(response_id: str) -> Job:
    """The caller's job behind a response id; 404 for anything else (another key's, or a job
    made by another route)."""
    try:
        job = resources().jobs.owned(shapes.job_id_of(response_id), g.key_id)
    except ApiError:
        job = None
    if job is None or not (job.shape or {}).get("responses"):
        raise not_found("Response")
    return job


@bp.get("/responses/<response_id>")
def get_response(response_id: str):
    """`GET /openai/v1/responses/{id}`: the response as it stands."""
    return jsonify(_shown(_owned(response_id)))


@bp.post("/responses/<response_id>/cancel")
def cancel_response(response_id: str):
    """`POST /openai/v1/responses/{id}/cancel`: cancelled here at once, at RunPod by a worker."""
    res = resources()
    return jsonify(_shown(cancel(res.jobs, res.queue, _owned(response_id), "Response")))


def _stream(job: Job) -> Response:
    res = resources()
    deadline = time.monotonic() + res.settings.openai_wait_max
    release, still_allowed = hold(res.settings.openai_wait_max), alive()
    counter = iter(range(1_000_000))
    item_id = f"msg_{job.id}"
    started = _shown(job)  # here, in the request's context: the events are sent after it

    def event(kind: str, **body) -> str:
        payload = {"type": kind, "sequence_number": next(counter), **body}
        return f"event: {kind}\ndata: {orjson.dumps(payload).decode()}\n\n"

    def relay():
        yield event("response.created", response=started)
        yield event("response.in_progress", response={**started, "status": "in_progress"})
        message = {"type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}
        yield event("response.output_item.added", output_index=0, item=message)
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        yield event("response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=part)
        final = None
        for item in job_events(res.jobs, res.waiter, job, deadline=deadline, alive=still_allowed):
            if item.name == "chunk" and item.data.get("text"):
                yield event(
                    "response.output_text.delta",
                    item_id=item_id,
                    output_index=0,
                    content_index=0,
                    delta=item.data["text"],
                    logprobs=[],
                )
            elif item.name == "keepalive":
                yield ": keepalive\n\n"
            elif item.name == "job":
                final = item.data
            elif item.name == "revoked":
                yield event("error", code="invalid_api_key", message="The API key was revoked", param=None)
                return
        if final is None:
            yield event("error", code="timeout", message=f"Response {shapes.PREFIX}{job.id} is still running", param=None)
            return
        done = shapes.response_object(final, job.shape or {})
        if done["status"] not in ("completed", "incomplete"):
            yield event("response.failed", response=done)
            return
        text = next((c["text"] for o in done["output"] if o["type"] == "message" for c in o["content"]), "")
        yield event("response.output_text.done", item_id=item_id, output_index=0, content_index=0, text=text, logprobs=[])
        yield event("response.content_part.done", item_id=item_id, output_index=0, content_index=0, part={**part, "text": text})
        for index, output in enumerate(done["output"]):
            yield event("response.output_item.done", output_index=index, item=output)
        yield event("response.completed" if done["status"] == "completed" else "response.incomplete", response=done)

    return event_stream(relay, release)
