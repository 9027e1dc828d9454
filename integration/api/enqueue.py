"""The queue surface: `POST /v1/<surface route>` stores a job and answers 202 at once.

One route per registry entry. Accepting never waits for RunPod: the job is written to
Redis, due at once in the pending set, in one round trip, and a worker does the rest.
With `Prefer: wait[=N]` (RFC 7240) the answer is held until the job ends (200 with the
job) or N seconds pass (the usual 202); waiting holds no worker and polls nothing.
"""

from __future__ import annotations

import time
import uuid

from flask import Blueprint, current_app, g, jsonify, request

from integration import schemas, surfaces
from integration.api import json_body
from integration.api.admission import admit
from integration.errors import ApiError
from integration.jobs import Job, JobStatus
from integration.outbound import check_target
from integration.quotas import LimitReached
from integration.waiting import preferred_wait

bp = Blueprint("enqueue", __name__)
bp.before_request(admit)


def enqueue_answer(job: Job, surface: surfaces.Surface) -> dict:
    """The enqueue object (seed 000's shape)."""
    return {
        "id": job.id,
        "object": surface.object,
        "created": int(job.created),
        "status": job.status.value,
        "surface": job.surface,
        "model": job.model,
        "endpoint_id": job.endpoint_id,
        "runpod": {"id": job.runpod_id, "status": job.runpod_status},
    }


def accept(surface: surfaces.Surface, request_data: dict, job_input: dict | None = None) -> Job:
    """Store a job for a validated request (the route's work, shared by every mode)."""
    resources = current_app.extensions["podrelay"]
    model, endpoint_id = surface.resolve(request_data, resources.settings)
    if "webhook_url" in request_data:
        check_target(request_data["webhook_url"], resources.settings.webhook_allow_private, "webhook_url")
    job = Job(
        id=str(uuid.uuid4()),
        key_id=g.key_id,
        surface=surface.name,
        model=model,
        endpoint_id=endpoint_id,
        status=JobStatus.QUEUED,
        created=time.time(),
        input=job_input if job_input is not None else surface.to_input(request_data, model),
        webhook_url=request_data.get("webhook_url"),
        policy=request_data.get("policy"),
        request_id=g.request_id,
        cost=resources.prices.estimate(surface, model, request_data)["estimated_cost"],
    )
    store_within_limits(job)
    return job


def store_within_limits(job: Job, due: float = 0) -> None:
    """Store a job if the caller's concurrency limit and budget allow it; else 429 or 402."""
    try:
        current_app.extensions["podrelay"].jobs.create(job, due=due, limits=g.limits)
    except LimitReached as refused:
        raise refusal(refused) from None


def refusal(refused: LimitReached) -> ApiError:
    """The answer to a job the key's limits do not admit (seed 003's bodies)."""
    if refused.code == "budget_exceeded":
        return ApiError(402, "budget_exceeded", "Budget limit exceeded for monthly period", details=refused.details)
    limit = refused.details["limit"]
    message = f"Concurrency limit exceeded: {limit} jobs in flight; retry when one has ended"
    return ApiError(429, "concurrency_limit_exceeded", message, details=refused.details, headers={"Retry-After": "5"})


def wait_for_end(job_id: str, seconds: float) -> Job | None:
    """The job once final, if that happens within `seconds`; else None."""
    resources = current_app.extensions["podrelay"]
    current: list[Job | None] = [None]

    def finished() -> bool:
        current[0] = resources.jobs.get(job_id)
        return current[0] is None or current[0].status.final

    return current[0] if resources.waiter.wait(job_id, seconds, finished) else None


def _enqueue(surface: surfaces.Surface):
    settings = current_app.extensions["podrelay"].settings
    job = accept(surface, schemas.load(surface.schema, json_body()))
    wait = preferred_wait(request.headers.get("Prefer"), settings.prefer_wait_max)
    finished = wait_for_end(job.id, wait) if wait else None
    if finished is not None:
        response = jsonify(finished.to_api())
    else:
        response = jsonify(enqueue_answer(job, surface))
        response.status_code = 202
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if wait:
        response.headers["Preference-Applied"] = f"wait={wait:g}"
    return response


def _price(surface: surfaces.Surface):
    """`POST /v1/<route>/price`: the same body as the route, answered with its estimated cost."""
    request_data = schemas.load(surface.schema, json_body())
    model = surface.model_for(request_data)
    return jsonify(current_app.extensions["podrelay"].prices.estimate(surface, model, request_data))


@bp.get("/models")
def models():
    """Every model, with its surface, route, price and whether an endpoint is configured."""
    resources = current_app.extensions["podrelay"]
    data, by_surface = [], {}
    for surface in surfaces.SURFACES.values():
        entries = []
        for model in surface.models:
            entries.append(
                {
                    "id": model,
                    "object": "model",
                    "surface": surface.name,
                    "route": f"/v1{surface.route}",
                    "default": model == surface.default_model,
                    "endpoint_configured": bool(resources.settings.endpoint_for(surface.name, model)),
                    "price": {"unit": surface.unit, "unit_price": resources.prices.unit_price(surface, model), "currency": "USD"},
                }
            )
        data += entries
        by_surface[surface.name] = {"route": f"/v1{surface.route}", "models": [e["id"] for e in entries]}
    return jsonify({"object": "list", "data": data, "surfaces": by_surface})


for _surface in surfaces.SURFACES.values():
    bp.add_url_rule(
        _surface.route, endpoint=f"enqueue_{_surface.name}", view_func=lambda s=_surface: _enqueue(s), methods=["POST"]
    )
    bp.add_url_rule(
        f"{_surface.route}/price", endpoint=f"price_{_surface.name}", view_func=lambda s=_surface: _price(s), methods=["POST"]
    )
