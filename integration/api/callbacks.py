"""The provider callback: RunPod POSTs a job's final status to the URL it was given.

The token in the path names the job (see integration/runpod/callbacks.py). The payload is kept
on the job and the job made due at once; a worker normalises and stores the result.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from integration.api.context import json_body, resources
from integration.errors import ApiError, not_found
from integration.files import results
from integration.runpod.callbacks import ROUTE

bp = Blueprint("callbacks", __name__)


@bp.post(ROUTE + "<token>")
def runpod_callback(token: str):
    """`POST /callbacks/runpod/{token}`: RunPod's final status of the job the token names."""
    res = resources()
    job_id = res.tokens.job_id(token)
    job = res.jobs.get(job_id) if job_id else None
    if job is None:
        raise not_found("Callback")
    # Outputs (base64 images, long transcripts) exceed the API's body limit; only a
    # verified callback gets the larger one.
    request.max_content_length = res.settings.callback_max_bytes
    payload = json_body()
    if not isinstance(payload.get("status"), str):
        raise ApiError(400, "validation_error", "Callback payload has no status", param="status")
    if job.runpod_id and payload.get("id") not in (None, job.runpod_id):
        raise ApiError(400, "validation_error", "Callback is for another RunPod job", param="id")
    res.jobs.record_callback(job.id, results.parked(res.files, job.id, payload, request.get_data(cache=True)))
    return jsonify({"received": True})
