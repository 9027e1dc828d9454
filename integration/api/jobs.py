"""The jobs API: read one job, list a key's jobs, cancel one. Provider-agnostic.

A job of another API key is answered exactly like a job that does not exist (404).
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from integration import surfaces
from integration.api.admission import admit
from integration.api.context import resources
from integration.errors import validation_error
from integration.jobs.record import JobStatus
from integration.jobs.tasks import cancel

bp = Blueprint("jobs", __name__)
bp.before_request(admit)


@bp.get("/jobs/<job_id>")
def get_job(job_id: str):
    """`GET /v1/jobs/{id}`: the caller's job."""
    res = resources()
    return jsonify(res.jobs.shown(res.jobs.owned(job_id, g.key_id)))


@bp.get("/jobs")
def list_jobs():
    """`GET /v1/jobs`: the caller's jobs, newest first, filtered and paged by cursor."""
    args = request.args
    try:
        limit = int(args.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise validation_error("Invalid value for 'limit': must be an integer from 1 to 100.", "limit")
    status = args.get("status")
    if status and status not in {s.value for s in JobStatus}:
        raise validation_error(f"Invalid value for 'status': must be one of {', '.join(s.value for s in JobStatus)}.", "status")
    surface = args.get("surface")
    if surface and surface not in surfaces.SURFACES:
        raise validation_error(f"Invalid value for 'surface': must be one of {', '.join(surfaces.SURFACES)}.", "surface")
    cursor = args.get("cursor") or None
    store = resources().jobs
    jobs, next_cursor = store.list_for_key(g.key_id, limit, cursor, status, surface)
    data = [store.shown(job) for job in jobs]
    return jsonify({"object": "list", "data": data, "has_more": next_cursor is not None, "next_cursor": next_cursor})


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str):
    """`POST /v1/jobs/{id}/cancel`: cancelled here at once, at RunPod by a worker."""
    res = resources()
    job = cancel(res.jobs, res.queue, res.jobs.owned(job_id, g.key_id))
    return jsonify(res.jobs.shown(job))
