"""Downloads: a job's file result, by API key (`/v1/jobs/{id}/download`) or by signed link.

`?index=N` picks the item (default 0). An item that is a URL at the worker's side is a
redirect to it; an inline one is served with its content type.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, request

from integration.api.admission import admit
from integration.api.context import resources
from integration.errors import ApiError, not_found, validation_error
from integration.files import downloads
from integration.jobs.record import Job

bp = Blueprint("downloads", __name__)  # no key: the signed link is the credential
keyed = Blueprint("job_downloads", __name__)
keyed.before_request(admit)


def serve(job: Job | None, index: int):
    """Item `index` of the job's file result: a redirect to a worker's URL, or the bytes."""
    if job is None:
        raise not_found("Download")
    files = downloads.items(job.result)
    if not files:
        raise ApiError(404, "no_file_result", "This job has no file result (yet)")
    if not 0 <= index < len(files):
        raise validation_error(f"Invalid value for 'index': the result has {len(files)} file(s).", "index")
    item = files[index]
    if "url" in item and "b64_json" not in item:
        return redirect(item["url"], code=302)
    data = downloads.decode(item)
    if data is None:
        raise ApiError(502, "invalid_output", "The stored file is not valid base64")
    media_type = downloads.content_type(data)
    extension = media_type.split("/")[-1].replace("octet-stream", "bin").replace("jpeg", "jpg").replace("mpeg", "mp3")
    response = Response(data, mimetype=media_type)
    response.headers["Content-Disposition"] = f'inline; filename="{job.id}-{index}.{extension}"'
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"  # a worker's bytes are never run as a page
    return response


@keyed.get("/jobs/<job_id>/download")
def download_job_file(job_id: str):
    """`GET /v1/jobs/{id}/download?index=N`: a file of the caller's job."""
    try:
        index = int(request.args.get("index", "0"))
    except ValueError:
        raise validation_error("Invalid value for 'index': must be an integer.", "index") from None
    return serve(resources().jobs.owned(job_id, g.key_id), index)


@bp.get(downloads.ROUTE + "<token>")
def download_by_link(token: str):
    """`GET /downloads/{token}`: a file by signed link, no key needed."""
    res = resources()
    target = res.links.target(token)
    if target is None:
        raise ApiError(403, "invalid_download_link", "This download link is invalid or has expired")
    job_id, index = target
    return serve(res.jobs.get(job_id), index)
