"""File results in the store: moved there when a job ends, read back for whoever asks.

A worker's output may carry its files inline (base64 or data URIs, a few MB each). When
the job completes, each inline file of its result (`data: [{b64_json}]`) is written to
the blob store and the record keeps a reference (`{"file", "content_type", "bytes",
"sha256"}`), so Redis holds a few hundred bytes per job whatever the files weigh. The API
shows a reference as a signed download link (`downloads.DownloadLinks.linked`); OpenAI
mode's `b64_json` answers read the bytes back (`inlined`).
"""

from __future__ import annotations

import base64
import json
import logging

from integration.errors import ApiError
from integration.files.downloads import content_type, decode, items
from integration.files.store import DirectoryStore, FileMissing, S3Store, StoredFile, file_key

log = logging.getLogger(__name__)


def kept(files: DirectoryStore | S3Store, job_id: str, result: dict) -> dict:
    """`result` with its inline files written to the store and replaced by references."""
    if not any("b64_json" in item for item in items(result)):
        return result
    result = {**result, "data": list(result["data"])}
    for index, item in enumerate(result["data"]):
        data = decode(item) if isinstance(item, dict) else None
        if data is None:
            continue  # not base64: kept as the worker sent it, and served as a 502 on download
        stored = files.put(file_key(job_id, f"out-{index}"), data, content_type(data))
        result["data"][index] = {**{k: v for k, v in item.items() if k != "b64_json"}, **stored.reference()}
    return result


PARK_OVER = 64 * 1024  # bytes of a callback body kept in the store rather than on the job record


def parked(files: DirectoryStore | S3Store, job_id: str, payload: dict, raw: bytes) -> dict:
    """A RunPod callback to keep on the job: as it came when small; when large (a worker's
    inline files), its body in the store and the record holding only where it is."""
    if len(raw) <= PARK_OVER:
        return payload
    stored = files.put(file_key(job_id, "callback.json"), raw, "application/json")
    return {"status": payload.get("status"), "id": payload.get("id"), "parked": stored.key}


def unparked(files: DirectoryStore | S3Store, callback: dict) -> dict:
    """The callback as RunPod sent it (read back from the store when it was parked there)."""
    if "parked" not in callback:
        return callback
    with files.open(callback["parked"]) as body:
        return json.loads(body.read())


def read(files: DirectoryStore | S3Store, reference: dict) -> bytes:
    """A stored file's bytes (FileMissing when it has been swept)."""
    with files.open(reference["file"]) as body:
        return body.read()


def item_fields(item: dict) -> dict:
    """A file item's own fields (a worker's `revised_prompt`, say): without the bytes or the
    store's reference, for an answer that shows the file its own way."""
    return {k: v for k, v in item.items() if k not in ("b64_json", *StoredFile.FIELDS)}


def inlined(files: DirectoryStore | S3Store, result: dict) -> dict:
    """`result` with each stored file read back as `b64_json` (OpenAI's inline answers)."""
    if not any("file" in item for item in items(result)):
        return result
    data = []
    for item in result["data"]:
        if isinstance(item, dict) and "file" in item:
            try:
                encoded = base64.b64encode(read(files, item)).decode()
            except FileMissing:
                log.warning("file %s of a finished job is missing from the store", item["file"])
                raise ApiError(410, "file_expired", "A file of this job is no longer kept") from None
            item = {**item_fields(item), "b64_json": encoded}
        data.append(item)
    return {**result, "data": data}
