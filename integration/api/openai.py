"""OpenAI-compatible mode under `/openai/v1`: the same pipeline, answered in OpenAI's shapes.

Code written for the official `openai` SDK works by changing `base_url`: chat
completions, embeddings, image generations, audio transcriptions (multipart upload),
models. Each request is still a tracked job (`GET /v1/jobs`). The request is held until
the job ends (up to `OPENAI_WAIT_MAX`); a job that failed answers 502, one still running
answers 504 naming the job, both with `x-should-retry: false` so the SDK does not send
the request again and start a second GPU job. Behind a router with a first-byte limit
(Heroku's 30 s), a long job's answer is kept alive with spaces (see `_answer`).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import time
from collections.abc import Callable

from flask import Blueprint, Response, g, jsonify, request

from integration import surfaces
from integration.api.admission import admit
from integration.api.context import alive, caller, hold, json_body, resources
from integration.api.holding import answer as _answer
from integration.api.holding import event_stream
from integration.errors import ApiError
from integration.files import results
from integration.jobs.accept import accept
from integration.jobs.record import Job, JobStatus
from integration.jobs.streaming import job_events
from integration.surfaces.audio import TranscriptionFormSchema
from integration.surfaces.fields import load

bp = Blueprint("openai", __name__)
bp.before_request(admit)


_form_schema = TranscriptionFormSchema()


def _accept(surface_name: str, request_data: dict, job_input: dict | None = None) -> Job:
    return accept(resources(), caller(), g.request_id, surfaces.get(surface_name), request_data, job_input)


def _run(surface_name: str, request_data: dict, render: Callable[[Job], Response], job_input: dict | None = None) -> Response:
    return _answer(_accept(surface_name, request_data, job_input), render)


def _result(job: Job) -> Response:
    return jsonify(job.result)


@bp.post("/chat/completions")
def chat_completions():
    """`POST /openai/v1/chat/completions`: held until done, or streamed as chunks."""
    data = load(surfaces.get("chat").schema, json_body())
    if data.get("stream"):
        return _stream_chat(_accept("chat", data))
    return _run("chat", data, _result)


def _stream_chat(job: Job) -> Response:
    """Server-Sent Events of `chat.completion.chunk`, relayed from RunPod's /stream, then `[DONE]`."""
    res = resources()
    deadline = time.monotonic() + res.settings.openai_wait_max
    release, still_allowed = hold(res.settings.openai_wait_max), alive()
    base = {"id": f"chatcmpl-{job.id}", "object": "chat.completion.chunk", "created": int(job.created), "model": job.model}

    def event(body: dict) -> str:
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

    def chunk(delta: dict, finish_reason: str | None = None) -> str:
        return event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

    def relayed(choices: list) -> list:
        """The worker's choices with content, tool calls and finish reasons as it streamed them."""
        return [
            {"index": c.get("index", 0), "delta": c.get("delta") or {}, "finish_reason": c.get("finish_reason")}
            for c in choices
            if isinstance(c, dict)
        ]

    def relay():
        yield chunk({"role": "assistant", "content": ""})
        final, finished = None, False
        for item in job_events(res.jobs, res.waiter, job, deadline=deadline, alive=still_allowed):
            if item.name == "chunk":
                choices = relayed(item.data.get("choices") or [{"delta": {"content": item.data["text"]}}])
                finished = finished or any(c["finish_reason"] for c in choices)
                if choices:
                    yield event({**base, "choices": choices})
            elif item.name == "keepalive":
                yield ": keepalive\n\n"
            elif item.name == "job":
                final = item.data
            elif item.name == "revoked":
                yield event(
                    {"error": {"message": "The API key was revoked", "type": "authentication_error", "code": "invalid_api_key"}}
                )
                yield "data: [DONE]\n\n"
                return
        if final is None:
            yield event({"error": {"message": f"Job {job.id} is still running", "type": "api_error", "code": "timeout"}})
        elif final["status"] == JobStatus.COMPLETED.value:
            if not finished:
                yield chunk({}, "stop")
            if ((job.input.get("openai_input") or job.input).get("stream_options") or {}).get("include_usage"):
                yield event({**base, "choices": [], "usage": (final.get("result") or {}).get("usage")})
        else:
            message = (final.get("error") or {}).get("message") or f"Job ended {final['status']}"
            yield event(
                {
                    "error": {
                        "message": f"Upstream provider returned error: {message}",
                        "type": "api_error",
                        "code": "provider_error",
                    }
                }
            )
        yield "data: [DONE]\n\n"

    return event_stream(relay, release)


@bp.post("/embeddings")
def embeddings():
    """`POST /openai/v1/embeddings`."""
    return _run("embeddings", load(surfaces.get("embeddings").schema, json_body()), _result)


@bp.post("/images/generations")
def image_generations():
    """`POST /openai/v1/images/generations`: `b64_json`, or signed links with `response_format: url`."""
    data = load(surfaces.get("images").schema, json_body())
    if data.get("response_format") != "url":
        return _run("images", data, lambda job: jsonify(results.inlined(resources().files, job.result)))

    def linked(job: Job) -> Response:
        links = resources().links
        items = [
            {**results.item_fields(item), "url": links.url(job.id, n)} if "b64_json" in item or "file" in item else item
            for n, item in enumerate(job.result["data"])
        ]
        return jsonify({**job.result, "data": items})

    return _run("images", data, linked)


@bp.post("/audio/transcriptions")
def audio_transcriptions():
    """`POST /openai/v1/audio/transcriptions`: a multipart upload, in OpenAI's response formats."""
    upload = request.files.get("file")  # werkzeug spools a large one to a temporary file, not memory
    if upload is None:
        raise ApiError(400, "validation_error", "Missing 'file': send the audio as multipart/form-data", param="file")
    size = upload.stream.seek(0, os.SEEK_END)
    upload.stream.seek(0)
    if not size:
        raise ApiError(400, "validation_error", "'file' is empty", param="file")
    data = load(_form_schema, request.form.to_dict())
    response_format = data.get("response_format", "json")

    def formatted(job: Job) -> Response:
        result = job.result
        if response_format in ("text", "srt", "vtt"):
            return Response(result["text"], mimetype="text/plain")
        if response_format == "verbose_json":
            segments = result.get("segments") or []
            duration = max((float(s.get("end", 0)) for s in segments), default=0.0)
            return jsonify({"task": "transcribe", "language": result.get("language"), "duration": duration, **result})
        return jsonify({"text": result["text"]})

    res = resources()
    if size <= res.settings.inline_input_max:  # inline, as worker-faster_whisper's `audio_base64`
        job = _accept("transcribe", {**data, "audio_base64": base64.b64encode(upload.stream.read()).decode()})
    else:  # stored, streamed from the spooled file, and fetched by the worker as `audio`
        media_type = upload.mimetype or mimetypes.guess_type(upload.filename or "")[0] or "application/octet-stream"
        uploads = {"audioUrl": (upload.stream, media_type, size)}
        job = accept(res, caller(), g.request_id, surfaces.get("transcribe"), {**data, "audioUrl": ""}, uploads=uploads)
    return _answer(job, formatted, keep_alive=response_format not in ("text", "srt", "vtt"))


@bp.get("/models")
def models():
    """`GET /openai/v1/models`: every model of every surface."""
    created = int(time.time())
    by_id: dict[str, dict] = {}  # one entry per id (a model may serve several surfaces)
    for surface in surfaces.SURFACES.values():
        for model in surface.models:
            entry = by_id.setdefault(model, {"id": model, "object": "model", "created": created, "owned_by": "podrelay"})
            entry.setdefault("surface", surface.name)
            entry.setdefault("surfaces", []).append(surface.name)
    return jsonify({"object": "list", "data": list(by_id.values())})
