"""Accepting a job: a validated request becomes a stored job, due at once, within its key's limits.

Shared by every mode that creates a job from a surface's request (the queue surface,
OpenAI mode). Accepting never waits for RunPod: the job is written to Redis in one round
trip and a worker does the rest.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, BinaryIO

from integration import adapters
from integration.accounts.keys import Caller
from integration.errors import ApiError
from integration.jobs.record import Job, compact, new_id

if TYPE_CHECKING:
    from integration.resources import Resources
from integration.surfaces import Surface
from integration.webhooks.outbound import check_target

Upload = tuple[BinaryIO, str, int]  # a multipart file: its stream, media type and size


def accept(
    res: Resources,
    caller: Caller,
    request_id: str,
    surface: Surface,
    request: dict,
    job_input: dict | None = None,
    uploads: dict[str, Upload] | None = None,
    shape: dict | None = None,
    deadline: float | None = None,
) -> Job:
    """Store a job for a validated request (the worker's input built by the surface unless
    given); 400 for a routing or webhook problem, 429/402 when the key's limits refuse it.

    A large file (a data URI in one of the surface's file fields, or a multipart upload in
    `uploads`) is stored first, under the job's id, and the request names it by URL. `shape`
    is kept on the job beside the surface's own shaping fields (how its answer is rendered)."""
    model, endpoint_id = surface.resolve(request, res.settings)
    if "webhook_url" in request:
        check_target(request["webhook_url"], res.settings.webhook_allow_private, "webhook_url")
    worker = adapters.worker_for(res.settings, surface.name, model)
    job_id = new_id()
    staged = bool(uploads) or any(str(request.get(p, "")).startswith("data:") for p in surface.file_params)
    try:
        if staged:
            request = res.uploads.request_files(job_id, request, surface.file_params, adapters.fetched_by_url(worker))
            for param, upload in (uploads or {}).items():
                request[param] = res.uploads.stage(job_id, param, *upload)
        if job_input is None:
            job_input = adapters.job_input(res.settings, worker, surface.name, request, model)
        check_payload(job_input, request.get("policy"))
        job = Job.queued(
            caller.key_id,
            surface.name,
            model,
            endpoint_id,
            job_input,
            worker=worker,
            shape={**{name: request[name] for name in surface.shape if name in request}, **(shape or {})} or None,
            webhook_url=request.get("webhook_url"),
            webhook_events=",".join(request["webhook_events"]) if request.get("webhook_events") else None,
            policy=request.get("policy"),
            priority=request.get("priority"),
            deadline=deadline,
            request_id=request_id,
            cost=res.prices.cost(surface, model, request),
            id=job_id,
        )
        res.jobs.create(job, limits=caller.limits, rate=caller.rate)
        return job
    except BaseException:
        if staged:  # the job was refused: its files go now, not at the next sweep
            res.files.delete_group(job_id)
        raise


RUN_MAX_BYTES = 10 * 1024 * 1024  # RunPod refuses larger /run bodies (docs: "Endpoint operations", /run)
RUNSYNC_MAX_BYTES = 20 * 1024 * 1024  # and larger /runsync bodies
_ENVELOPE = 1024  # the body's other fields: podrelay's callback URL, the policy's keys


def check_payload(job_input: dict, policy: dict | None, limit: int = RUN_MAX_BYTES) -> None:
    """A 413 naming RunPod's limit when the body RunPod would get is larger than it takes."""
    body = {"input": job_input, "policy": policy}
    size = len(compact(body)) + _ENVELOPE
    if size * 6 > limit:  # RunPod gets it with non-ASCII escaped (up to 6 bytes for one): count exactly
        size = len(json.dumps(body, separators=(",", ":"))) + _ENVELOPE
    if size > limit:
        raise ApiError(
            413,
            "payload_too_large",
            f"The worker input would be {size / 1_048_576:.1f} MB; RunPod takes at most {limit // 1_048_576} MB per job",
        )
