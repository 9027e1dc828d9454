"""The provider callback: RunPod POSTs a job's final status to the URL it was given.

The token in the path names the job (see integration/callbacks.py). The payload is kept
on the job and the job made due at once; a worker normalises and stores the result.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from integration.api import json_body
from integration.callbacks import ROUTE
from integration.errors import ApiError, not_found

bp = Blueprint("callbacks", __name__)


@bp.post(ROUTE + "<token>")
def runpod_callback(token: str):
    resources = current_app.extensions["podrelay"]
    job_id = resources.tokens.job_id(token)
    job = resources.jobs.get(job_id) if job_id else None
    if job is None:
        raise not_found("Callback")
    # Outputs (base64 images, long transcripts) exceed the API's body limit; only a
    # verified callback gets the larger one.
    request.max_content_length = resources.settings.callback_max_bytes
    payload = json_body()
    if not isinstance(payload.get("status"), str):
        raise ApiError(400, "validation_error", "Callback payload has no status", param="status")
    if job.runpod_id and payload.get("id") not in (None, job.runpod_id):
        raise ApiError(400, "validation_error", "Callback is for another RunPod job", param="id")
    resources.jobs.record_callback(job.id, payload)
    return jsonify({"received": True})
