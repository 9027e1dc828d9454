"""The MCP tools: one per surface, and the job tools (`job_get`, `job_list`, `job_cancel`,
`job_wait`, `price`).

A surface tool's input schema is that route's request body in podrelay's OpenAPI document
(`/openapi.json`, generated from the registry's marshmallow schemas, the same source as the
n8n spec), its `$ref`s inlined; `job_list` takes the listing's query parameters from the
same document. A call queues the job like any client's, follows its events for up to the
tool's wait (reporting MCP progress while it does), and answers with the result: text for
chat, transcripts and embeddings, image and audio content for small files, resource links
to the signed download URLs for large ones and video. A job still running when the wait
ends is answered with its id (call `job_wait`); a refusal or a failed job is a tool error
with podrelay's code and message.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Awaitable, Callable

import anyio
import mcp.types as t

from integration.mcp.rest import Podrelay, RestError

FINAL = ("completed", "failed", "cancelled", "timed_out")
WAIT_MAX = 300  # `job_wait`'s longest wait, seconds
PROGRESS_EVERY = 2.0  # seconds between progress notifications while nothing else happens
# What each surface's tool is for, as an agent reads it (its fields are in the schema).
SURFACE_TOOLS = {
    "chat": "Chat with a language model: send `messages` (role and content) and get the assistant's reply as text.",
    "images": "Generate images from a text `prompt`; the images come back as image content (or links when large).",
    "transcribe": "Transcribe speech in an audio file (`audioUrl`: an https URL or a data URI) to text.",
    "embeddings": "Embed text (`input`: a string or a list of strings) as vectors, for search or clustering.",
    "speech": "Speak a text (`input`) aloud; the audio comes back as audio content (or a link when large).",
    "video": "Generate a short video from a text `prompt` (optionally starting from an `image`); answered with a link.",
    "audio_video": "Make a video that follows an audio track (`audioUrl`) and an optional `image`; answered with a link.",
    "music": "Compose music from a text `prompt`; the audio comes back as audio content (or a link when large).",
    "image_edit": "Edit an `image` (an https URL or a data URI) as a text `prompt` says; answered with the new images.",
    "upscale": "Upscale an `image` (an https URL or a data URI) by `scale`; answered with the larger image.",
    "background_removal": "Remove the background of an `image` (an https URL or a data URI); answered with the cut-out.",
}
_ID = {"id": {"type": "string", "minLength": 1, "maxLength": 100, "description": "The job's id (job_...)"}}
JOB_TOOLS = {
    "job_get": ("The state of one of your jobs: status, result, error, cost.", {"type": "object", "properties": _ID, "required": ["id"]}),
    "job_cancel": ("Cancel one of your jobs that has not ended yet.", {"type": "object", "properties": _ID, "required": ["id"]}),
    "job_wait": (
        f"Wait up to `timeout` seconds (at most {WAIT_MAX}) for one of your jobs to end, reporting progress; answers its state.",
        {"type": "object", "required": ["id"], "properties": {
            **_ID, "timeout": {"type": "number", "minimum": 1, "maximum": WAIT_MAX, "default": 60},
        }},
    ),
}  # fmt: skip


def inline(schema: dict, document: dict, depth: int = 0) -> dict:
    """`schema` with every `#/components/schemas/...` reference replaced by what it names."""
    if depth > 20:
        raise ValueError("schema references nest too deep")
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            named = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
            return inline(named, document, depth + 1)
        return {k: inline(v, document, depth + 1) for k, v in schema.items()}
    if isinstance(schema, list):
        return [inline(v, document, depth + 1) for v in schema]
    return schema


def request_schema(document: dict, route: str) -> dict:
    """The JSON body schema of `POST /v1<route>` in the OpenAPI document, self-contained."""
    body = document["paths"][f"/v1{route}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return inline(copy.deepcopy(body), document)


def list_schema(document: dict) -> dict:
    """`job_list`'s arguments: the query parameters of `GET /v1/jobs`."""
    params = document["paths"]["/v1/jobs"]["get"].get("parameters", [])
    properties = {
        p["name"]: {**p["schema"], "description": p.get("description") or p["name"]} for p in params if p["in"] == "query"
    }
    return {"type": "object", "properties": properties}


def tools(document: dict, routes: dict[str, str]) -> list[t.Tool]:
    """Every tool, its schema from `document`; `routes` maps each surface to its route."""
    found = [
        t.Tool(name=name, description=SURFACE_TOOLS[name], input_schema=request_schema(document, route))
        for name, route in routes.items()
    ]
    found += [t.Tool(name=name, description=text, input_schema=schema) for name, (text, schema) in JOB_TOOLS.items()]
    found.append(
        t.Tool(name="job_list", description="Your jobs, newest first, by status or surface.", input_schema=list_schema(document))
    )
    price = {"type": "object", "required": ["surface", "request"], "properties": {
        "surface": {"type": "string", "enum": sorted(routes)},
        "request": {"type": "object", "description": "The request you would send to that surface's tool"},
    }}  # fmt: skip
    found.append(
        t.Tool(name="price", description="What a request to a surface would cost, before you send it.", input_schema=price)
    )
    return found


Progress = Callable[[float, float | None, str | None], Awaitable[None]]


async def follow(api: Podrelay, job: dict, seconds: float, progress: Progress) -> dict:
    """The job once it ends or `seconds` pass, with a progress notification for each event and every few seconds."""
    if job.get("status") in FINAL or seconds <= 0:
        return job
    started, state = time.monotonic(), {"status": job.get("status"), "reported": 0.0}

    async def report() -> None:
        elapsed = max(round(time.monotonic() - started, 3), state["reported"] + 0.001)  # must increase
        state["reported"] = elapsed
        await progress(elapsed, seconds, f"job {job['id']} {state['status']} after {elapsed:.0f} s")

    async def tick() -> None:
        while True:
            await anyio.sleep(PROGRESS_EVERY)
            await report()

    with anyio.move_on_after(seconds):
        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            async for event in api.events(job["id"], seconds):
                if event.name == "status":
                    state["status"] = event.data.get("status", state["status"])
                    await report()
                elif event.name == "progress":  # the worker's own report
                    state["status"] = f"running: {json.dumps(event.data.get('progress'))[:200]}"
                    await report()
                if event.name == "job":
                    break
            group.cancel_scope.cancel()
    return await api.job(job["id"])


def _text(surface: str, result) -> str:
    if not isinstance(result, dict):
        return json.dumps(result)[:4000]
    if surface == "chat":
        message = ((result.get("choices") or [{}])[0] or {}).get("message") or {}
        if message.get("tool_calls") and not message.get("content"):
            return json.dumps({"tool_calls": message["tool_calls"]})
        return message.get("content") or ""
    if surface == "embeddings":
        vectors = [item.get("embedding") for item in result.get("data") or []]
        size = len(vectors[0]) if vectors and isinstance(vectors[0], list) else 0
        return f"{len(vectors)} embedding(s) of {size} dimensions (the vectors are in the structured content)"
    if isinstance(result.get("text"), str):
        return result["text"]
    return json.dumps(result)[:4000]


async def _files(api: Podrelay, job: dict) -> list:
    """The job's result files as MCP content: inline image/audio when small, else a resource link."""
    items = (job.get("result") or {}).get("data") or []
    content = []
    for index, item in enumerate(item for item in items if isinstance(item, dict) and item.get("url")):
        kind = item.get("content_type") or "application/octet-stream"
        fetched = await api.file(item["url"]) if kind.startswith(("image/", "audio/")) else None
        if fetched is not None:
            data, kind = fetched
            make = t.ImageContent if kind.startswith("image/") else t.AudioContent
            content.append(make(type=make.model_fields["type"].default, data=base64.b64encode(data).decode(), mime_type=kind))
        else:
            url = item["url"] if "://" in item["url"] else api.base_url + item["url"]
            link = t.ResourceLink(type="resource_link", uri=url, name=f"{job['id']}-{index}", mime_type=kind)
            content.append(link.model_copy(update={"size": item.get("bytes")}))
    return content


async def rendered(api: Podrelay, job: dict, surface: str | None = None) -> t.CallToolResult:
    """A job as a tool's answer: its result for people and agents, the job itself as structured content."""
    status, job_id = job.get("status"), job.get("id")
    if status == "completed":
        surface = surface or job.get("surface", "")
        content = [t.TextContent(type="text", text=f"Job {job_id} completed.")]
        files = await _files(api, job)
        content += files or [t.TextContent(type="text", text=_text(surface, job.get("result")))]
        return t.CallToolResult(content=content, structured_content=job)
    if status in FINAL:
        error = job.get("error") or {}
        text = f"Job {job_id} {status}: {error.get('code', status)}: {error.get('message', '')}".rstrip(": ")
        return t.CallToolResult(content=[t.TextContent(type="text", text=text)], structured_content=job, is_error=True)
    text = f"Job {job_id} is {status}; it goes on. Call job_wait with id {job_id!r} to wait for it, or job_get to look."
    return t.CallToolResult(content=[t.TextContent(type="text", text=text)], structured_content=job)


def refused(error: RestError) -> t.CallToolResult:
    """podrelay's refusal as a tool error: its code, message and the field it names."""
    envelope = {"error": {"status": error.status, "code": error.code, "message": error.message, "param": error.param}}
    return t.CallToolResult(content=[t.TextContent(type="text", text=str(error))], structured_content=envelope, is_error=True)


async def call(api: Podrelay, routes: dict[str, str], name: str, args: dict, wait: float, progress: Progress):
    """Run the tool `name` with `args`: its answer, refusals and failures as tool errors."""
    try:
        if name in routes:
            return await rendered(api, await follow(api, await api.enqueue(routes[name], args), wait, progress), name)
        if name == "job_get":
            return await rendered(api, await api.job(str(args.get("id", ""))))
        if name == "job_cancel":
            return await rendered(api, await api.cancel(str(args.get("id", ""))))
        if name == "job_wait":
            timeout = args.get("timeout", 60)
            if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 1 <= timeout <= WAIT_MAX:
                raise RestError(400, "validation_error", f"timeout must be a number of seconds from 1 to {WAIT_MAX}", "timeout")
            return await rendered(api, await follow(api, await api.job(str(args.get("id", ""))), float(timeout), progress))
        if name == "job_list":
            listed = await api.jobs({k: v for k, v in args.items() if k in ("limit", "cursor", "status", "surface")})
            summary = [{k: job.get(k) for k in ("id", "surface", "status", "created")} for job in listed.get("data", [])]
            return t.CallToolResult(content=[t.TextContent(type="text", text=json.dumps(summary))], structured_content=listed)
        if name == "price":
            if args.get("surface") not in routes or not isinstance(args.get("request"), dict):
                raise RestError(400, "validation_error", f"surface must be one of {sorted(routes)}, request an object", "surface")
            quote = await api.price(routes[args["surface"]], args["request"])
            return t.CallToolResult(content=[t.TextContent(type="text", text=json.dumps(quote))], structured_content=quote)
        raise RestError(404, "unknown_tool", f"No tool named {name!r}", "name")
    except RestError as error:
        return refused(error)
