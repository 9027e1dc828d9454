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
from collections.abc import Iterator

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
    started = _shown(job)  # here, in the request's context: the events are sent after it
    events = _Events(f"msg_{job.id}")

    def relay():
        yield events.event("response.created", response=started)
        yield events.event("response.in_progress", response={**started, "status": "in_progress"})
        final = None
        for item in job_events(res.jobs, res.waiter, job, deadline=deadline, alive=still_allowed):
            if item.name == "chunk" and item.data.get("text"):
                yield from events.text(item.data["text"])
            elif item.name == "keepalive":
                yield ": keepalive\n\n"
            elif item.name == "job":
                final = item.data
            elif item.name == "revoked":
                yield events.event("error", code="invalid_api_key", message="The API key was revoked", param=None)
                return
        if final is None:
            message = f"Response {shapes.PREFIX}{job.id} is still running"
            yield events.event("error", code="timeout", message=message, param=None)
            return
        done = shapes.response_object(final, job.shape or {})
        if done["status"] not in ("completed", "incomplete"):
            yield events.event("response.failed", response=done)
            return
        yield from events.finish(done)
        yield events.event("response.completed" if done["status"] == "completed" else "response.incomplete", response=done)

    return event_stream(relay, release)


class _Events:
    """One stream's Responses events, numbered: the message item opened at its first text (so
    a response that only calls tools has no empty message), then each function call's item."""

    def __init__(self, message_id: str):
        self.message_id, self.opened, self.streamed = message_id, False, ""
        self._counter = iter(range(1_000_000))

    def event(self, kind: str, **body) -> str:
        payload = {"type": kind, "sequence_number": next(self._counter), **body}
        return f"event: {kind}\ndata: {orjson.dumps(payload).decode()}\n\n"

    def _part(self, text: str = "") -> dict:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def text(self, delta: str) -> Iterator[str]:
        """A text delta of the message (output 0), opening it first."""
        if not self.opened:
            self.opened = True
            message = {"type": "message", "id": self.message_id, "status": "in_progress", "role": "assistant", "content": []}
            yield self.event("response.output_item.added", output_index=0, item=message)
            at = {"item_id": self.message_id, "output_index": 0, "content_index": 0}
            yield self.event("response.content_part.added", **at, part=self._part())
        self.streamed += delta
        yield self.event(
            "response.output_text.delta", item_id=self.message_id, output_index=0, content_index=0, delta=delta, logprobs=[]
        )

    def finish(self, done: dict) -> Iterator[str]:
        """The `.done` events of every output item; the items the stream had not opened yet
        (text the worker did not stream, function calls) are opened and filled first."""
        output = done["output"]
        if self.opened and not (output and output[0]["type"] == "message"):
            output.insert(0, {"type": "message", "id": self.message_id, "status": "completed", "role": "assistant",
                              "content": [self._part(self.streamed)]})  # fmt: skip
        for index, item in enumerate(output):
            if item["type"] == "message":
                text = item["content"][0]["text"] if item["content"] else ""
                if not self.opened and text:
                    yield from self.text(text)
                at = {"item_id": self.message_id, "output_index": index, "content_index": 0}
                yield self.event("response.output_text.done", **at, text=text, logprobs=[])
                yield self.event("response.content_part.done", **at, part=self._part(text))
            elif item["type"] == "function_call":
                yield self.event(
                    "response.output_item.added", output_index=index, item={**item, "arguments": "", "status": "in_progress"}
                )
                at = {"item_id": item["id"], "output_index": index}
                yield self.event("response.function_call_arguments.delta", **at, delta=item["arguments"])
                yield self.event("response.function_call_arguments.done", **at, arguments=item["arguments"], name=item["name"])
            yield self.event("response.output_item.done", output_index=index, item=item)
