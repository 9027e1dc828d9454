"""Downloads: a job's file result, by API key (`/v1/jobs/{id}/download`) or by signed link,
and an upload by the signed URL its worker was given (`/files/{token}/{name}`).

`?index=N` picks the item (default 0). A file in the blob store is streamed from it, a
chunk at a time, whichever backend holds it (so a link works wherever podrelay does, and
a private bucket stays private); an item that is a URL at the worker's side is a redirect
to it; an inline one (jobs kept before the store) is decoded and served.
"""

from __future__ import annotations

import mimetypes

from flask import Blueprint, Response, g, redirect, request
from werkzeug.wsgi import wrap_file

from integration.api.admission import admit
from integration.api.context import resources
from integration.errors import ApiError, not_found, validation_error
from integration.files import downloads, inputs
from integration.files.store import CHUNK, FileMissing
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
    if "file" in item:
        return _stream(
            item["file"], item.get("content_type") or "application/octet-stream", item.get("bytes"), f"{job.id}-{index}"
        )
    if "url" in item and "b64_json" not in item:
        return redirect(item["url"], code=302)
    data = downloads.decode(item)
    if data is None:
        raise ApiError(502, "invalid_output", "The stored file is not valid base64")
    media_type = downloads.content_type(data)
    return _file_headers(Response(data, mimetype=media_type), media_type, f"{job.id}-{index}")


def _stream(key: str, media_type: str, size: int | None, name: str) -> Response:
    """A stored file, streamed from the blob store (410 when it has been swept)."""
    try:
        body = resources().files.open(key)
    except FileMissing:
        raise ApiError(410, "file_expired", "This file is no longer kept") from None
    response = Response(wrap_file(request.environ, body, CHUNK), mimetype=media_type, direct_passthrough=True)
    if size is not None:
        response.content_length = size
    return _file_headers(response, media_type, name)


def _file_headers(response: Response, media_type: str, name: str) -> Response:
    extension = inputs.extension(media_type)
    response.headers["Content-Disposition"] = f'inline; filename="{name}{extension}"'
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


@bp.get(inputs.ROUTE + "<token>/<name>")
def upload_by_link(token: str, name: str):
    """`GET /files/{token}/{name}`: an upload, for the worker its URL was given to."""
    key = resources().file_links.key(token)
    if key is None or key.rsplit("/", 1)[1] != name:
        raise ApiError(403, "invalid_file_link", "This file link is invalid or has expired")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return _stream(key, media_type, None, name.rsplit(".", 1)[0])
