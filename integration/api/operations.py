"""What each route does and answers: the entries of the OpenAPI document (`openapi.py`).

Keyed by the route's endpoint name; a route without an entry fails the test that checks
the document covers every route.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from integration import surfaces
from integration.api import answer_schemas as answers
from integration.runpod.direct import DirectRunSchema
from integration.surfaces.audio import TranscriptionFormSchema
from integration.surfaces.responses import ResponsesSchema
from integration.webhooks.schemas import RecoverSchema, SubscriptionSchema, SubscriptionUpdateSchema

JSON = "application/json"
KEYED = (401, 429, 503)  # every keyed route: no/invalid key, rate limit, Redis down
POSTED = (400, 409, 413, 415, 422)  # every keyed POST: body, idempotency key, size, media type
ERROR_TEXT = {
    400: "Invalid request: the envelope's `param` names the field",
    401: "Missing or invalid API key",
    402: "The key's monthly budget would be crossed (`budget_exceeded`)",
    403: "Invalid or expired signed link; an admin key's operation; the key's subscriptions at their limit",
    404: "No such object for this key",
    405: "Method not allowed (MCP: GET and DELETE need a session, and podrelay's is stateless)",
    406: "The Accept header does not take what this route answers (MCP: application/json and text/event-stream)",
    409: "Conflict: an idempotent request still in progress, or the job is already final",
    413: "Body too large",
    415: "Content-Type must be application/json",
    422: "Idempotency-Key reused with another request",
    429: "Rate limit (`rate_limit_exceeded`) or jobs in flight (`concurrency_limit_exceeded`) reached",
    502: "RunPod answered with an error, or the job failed",
    503: "Not ready, or the job store is unreachable",
    504: "The job is still running (OpenAI mode); it continues, see `GET /v1/jobs`",
}


@dataclass(frozen=True)
class Op:
    """What one route does and answers."""

    summary: str
    tag: str
    answers: dict = field(default_factory=dict)  # status -> schema name | (schema name | None, [media types])
    body: object = None  # a marshmallow schema (or its name) for a JSON body
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, dict, str], ...] = ()  # (name, JSON schema, description)
    keyed: bool = True
    form: dict | None = None  # a multipart body, as a JSON schema


LIMIT = ("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, "Page size")
ENDPOINT_ID = (
    "endpoint_id",
    {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    "RunPod endpoint to use instead of the surface's",
)
ANY = ("*/*",)


def operations(converter) -> dict[str, Op]:
    """Every route's entry, by endpoint name (`converter` turns a schema into JSON Schema)."""
    delivery_query = (
        ("status", {"type": "string", "enum": ["pending", "delivered", "failed", "dead"]}, "Only deliveries in this state"),
        LIMIT,
    )
    direct = "RunPod direct"
    ops = {
        "health.healthz": Op("Process is up", "Operations", {200: "Health"}, keyed=False),
        "health.readyz": Op("Ready to serve: Redis, workers, backlog", "Operations", {200: "Health", 503: "Health"}, keyed=False),
        "health.metrics": Op(
            "Prometheus metrics (Bearer METRICS_TOKEN when set)",
            "Operations",
            {200: (None, ["text/plain"])},
            errors=(401,),
            keyed=False,
        ),
        "docs.openapi_json": Op("This document", "Operations", {200: (None, [JSON])}, keyed=False),
        "mcp.mcp_endpoint": Op(
            "The MCP server (streamable HTTP, stateless): JSON-RPC in, JSON or Server-Sent Events out",
            "MCP",
            {200: (None, [JSON, "text/event-stream"]), 202: (None, [JSON])},
            errors=(400, 404, 405, 406, 413, 415),
        ),
        "mcp.protected_resource": Op(
            "OAuth protected resource metadata for /mcp (RFC 9728)", "MCP", {200: (None, [JSON])}, keyed=False
        ),
        "docs.docs_page": Op("The API docs page (Swagger UI)", "Operations", {200: (None, ["text/html"])}, keyed=False),
        "docs.docs_asset": Op("The docs page's own files", "Operations", {200: (None, ANY)}, errors=(404,), keyed=False),
        "enqueue.models": Op("Every model with its surface, route, price", "Models", {200: "ModelList"}),
        "account.usage": Op("The key's limits and this month's usage", "Account", {200: "Usage"}),
        "jobs.list_jobs": Op(
            "List the key's jobs, newest first",
            "Jobs",
            {200: "JobList"},
            errors=(400,),
            query=(
                LIMIT,
                ("cursor", {"type": "string"}, "`next_cursor` of the previous page"),
                ("status", {"type": "string", "enum": list(answers.JobSchema().fields["status"].metadata["enum"])}, ""),
                ("surface", {"type": "string", "enum": list(surfaces.SURFACES)}, ""),
            ),
        ),
        "jobs.get_job": Op("Get a job", "Jobs", {200: "Job"}, errors=(404,)),
        "jobs.cancel_job": Op("Cancel a job", "Jobs", {200: "Job"}, errors=(404, 409)),
        "job_downloads.download_job_file": Op(
            "A job's file result",
            "Jobs",
            {200: (None, ANY), 302: (None, [])},
            errors=(400, 404, 410, 502),
            query=(("index", {"type": "integer", "minimum": 0, "default": 0}, "Which file of the result"),),
        ),
        "downloads.download_by_link": Op(
            "A job's file by signed link (no key)",
            "Jobs",
            {200: (None, ANY), 302: (None, [])},
            errors=(403, 404, 410, 502),
            keyed=False,
        ),
        "downloads.upload_by_link": Op(
            "An uploaded file, for the worker its signed URL was given to (no key)",
            "Jobs",
            {200: (None, ANY)},
            errors=(403, 410),
            keyed=False,
        ),
        "events.job_event_stream": Op(
            "A job's status changes and output as Server-Sent Events",
            "Jobs",
            {200: (None, ["text/event-stream"])},
            errors=(400, 404),
        ),
        "events.job_event_socket": Op(
            "A job's events over WebSocket (send an Upgrade)", "Jobs", {101: (None, [])}, errors=(400, 404)
        ),
        "webhooks.create_subscription": Op(
            "Subscribe a URL to job events", "Webhooks", {201: "Subscription"}, SubscriptionSchema, errors=(403,)
        ),
        "webhooks.list_subscriptions": Op("List subscriptions", "Webhooks", {200: "SubscriptionList"}),
        "webhooks.get_subscription": Op("Get a subscription", "Webhooks", {200: "Subscription"}, errors=(404,)),
        "webhooks.update_subscription": Op(
            "Change a subscription", "Webhooks", {200: "Subscription"}, SubscriptionUpdateSchema, errors=(400, 404, 409, 413, 415)
        ),
        "webhooks.delete_subscription": Op("Delete a subscription", "Webhooks", {200: "Deleted"}, errors=(404,)),
        "webhooks.rotate_secret": Op("Rotate a subscription's secret", "Webhooks", {200: "Subscription"}, errors=(404,)),
        "webhooks.send_test_event": Op("Send a test event", "Webhooks", {202: "TestEvent"}, errors=(404,)),
        "webhooks.subscription_deliveries": Op(
            "A subscription's deliveries", "Webhooks", {200: "DeliveryList"}, errors=(400, 404), query=delivery_query
        ),
        "webhooks.key_deliveries": Op(
            "The key's deliveries (dead letters: status=dead)",
            "Webhooks",
            {200: "DeliveryList"},
            errors=(400,),
            query=delivery_query,
        ),
        "webhooks.get_delivery": Op("A delivery with its attempts", "Webhooks", {200: "Delivery"}, errors=(404,)),
        "webhooks.redeliver": Op("Send a delivery again", "Webhooks", {202: "Delivery"}, errors=(404,)),
        "webhooks.recover": Op(
            "Send again every failed or dead delivery of a subscription since a time",
            "Webhooks",
            {202: "Recovery"},
            body=RecoverSchema,
            errors=(404,),
        ),
        "webhooks.signing_secret": Op(
            "The secret signing deliveries to per-request webhook_url", "Webhooks", {200: "SigningSecret"}
        ),
        "webhooks.rotate_signing_secret": Op("Rotate the key's signing secret", "Webhooks", {200: "SigningSecret"}),
        "runpod.run": Op(
            "RunPod /run (tracked)", direct, {200: "RunPodAnswer"}, DirectRunSchema, (402, 403, 404, 502), (ENDPOINT_ID,)
        ),
        "runpod.runsync": Op(
            "RunPod /runsync (tracked)",
            direct,
            {200: "RunPodAnswer"},
            DirectRunSchema,
            (402, 403, 404, 502),
            (ENDPOINT_ID, ("wait", {"type": "integer", "minimum": 1000, "maximum": 300000}, "Milliseconds to wait")),
        ),
        "runpod.purge_queue": Op(
            "RunPod /purge-queue (admin keys)", direct, {200: "RunPodAnswer"}, errors=(400, 403, 404, 502), query=(ENDPOINT_ID,)
        ),
        "runpod.health": Op(
            "RunPod /health (the workers; job counts for admin keys)",
            direct,
            {200: "RunPodAnswer"},
            errors=(400, 403, 404, 502),
            query=(ENDPOINT_ID,),
        ),
        "openai.chat_completions": Op(
            "Chat completion (OpenAI mode; stream: Server-Sent Events)",
            "OpenAI mode",
            {200: ("OpenAIObject", [JSON, "text/event-stream"])},
            surfaces.get("chat").schema,
            (402, 502, 504),
        ),
        "openai.embeddings": Op(
            "Embeddings (OpenAI mode)", "OpenAI mode", {200: "OpenAIObject"}, surfaces.get("embeddings").schema, (402, 502, 504)
        ),
        "openai.image_generations": Op(
            "Images (OpenAI mode)", "OpenAI mode", {200: "OpenAIObject"}, surfaces.get("images").schema, (402, 502, 504)
        ),
        "openai.audio_transcriptions": Op(
            "Transcription of an uploaded file (OpenAI mode)",
            "OpenAI mode",
            {200: ("OpenAIObject", [JSON, "text/plain"])},
            errors=(402, 502, 504),
            form={
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}},
            },
        ),
        "openai.models": Op("Models (OpenAI mode)", "OpenAI mode", {200: "ModelList"}),
        "responses.create_response": Op(
            "A response (OpenAI's Responses API; stream: Server-Sent Events; background: at once)",
            "OpenAI mode",
            {200: ("OpenAIObject", [JSON, "text/event-stream"])},
            ResponsesSchema,
            (402, 502, 504),
        ),
        "responses.get_response": Op(
            "A response as it stands (Responses API)", "OpenAI mode", {200: "OpenAIObject"}, errors=(404,)
        ),
        "responses.cancel_response": Op(
            "Cancel a response (Responses API)", "OpenAI mode", {200: "OpenAIObject"}, errors=(404, 409)
        ),
        "callbacks.runpod_callback": Op(
            "RunPod's completion callback (the token in the path is the credential)",
            "Internal",
            {200: (None, [JSON])},
            {"type": "object"},
            (400, 403, 404, 413, 415),
            keyed=False,
        ),
    }
    ops["openai.audio_transcriptions"].form["properties"].update(
        converter.schema2jsonschema(TranscriptionFormSchema)["properties"]
    )
    for op in ("status", "stream", "cancel", "retry"):
        ops[f"runpod.runpod_{op}"] = Op(
            f"RunPod /{op} of a job this key started", direct, {200: "RunPodAnswer"}, errors=(404, 502)
        )
    for surface in surfaces.SURFACES.values():
        errors = (402,)
        ops[f"enqueue.enqueue_{surface.name}"] = Op(
            f"Queue a {surface.name} job (202), or with `Prefer: wait` get it when done (200)",
            surface.name,
            {202: "Enqueue", 200: "Job"},
            surface.schema,
            errors,
        )
        ops[f"enqueue.price_{surface.name}"] = Op(
            f"Estimate a {surface.name} request's cost", surface.name, {200: "Price"}, surface.schema
        )
    return ops
