"""Accepting a job: a validated request becomes a stored job, due at once, within its key's limits.

Shared by every mode that creates a job from a surface's request (the queue surface,
OpenAI mode). Accepting never waits for RunPod: the job is written to Redis in one round
trip and a worker does the rest.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from integration.accounts.keys import Caller
from integration.jobs.record import Job, JobStatus

if TYPE_CHECKING:
    from integration.resources import Resources
from integration.surfaces import Surface
from integration.webhooks.outbound import check_target


def accept(
    res: Resources, caller: Caller, request_id: str, surface: Surface, request: dict, job_input: dict | None = None
) -> Job:
    """Store a job for a validated request (the worker's input built by the surface unless
    given); 400 for a routing or webhook problem, 429/402 when the key's limits refuse it."""
    model, endpoint_id = surface.resolve(request, res.settings)
    if "webhook_url" in request:
        check_target(request["webhook_url"], res.settings.webhook_allow_private, "webhook_url")
    job = Job(
        id=str(uuid.uuid4()),
        key_id=caller.key_id,
        surface=surface.name,
        model=model,
        endpoint_id=endpoint_id,
        status=JobStatus.QUEUED,
        created=time.time(),
        input=job_input if job_input is not None else surface.to_input(request, model),
        webhook_url=request.get("webhook_url"),
        policy=request.get("policy"),
        request_id=request_id,
        cost=res.prices.estimate(surface, model, request)["estimated_cost"],
    )
    res.jobs.create(job, limits=caller.limits)
    return job
