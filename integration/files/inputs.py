"""Uploaded files on their way to a worker: inline when small, by URL when large.

RunPod refuses `/run` bodies over 10 MB, and a worker input is kept on the job record, so
a file over `INLINE_INPUT_MAX` (a data URI in a JSON request, a multipart upload) is
written to the blob store and the worker gets a URL to fetch it from (what the stock
workers do with `audio`, `data_url` and `image` URLs, through runpod-python's
`rp_download`): a presigned URL of the S3 bucket, or a signed podrelay URL under
`PUBLIC_BASE_URL` (`/files/{token}/{name}`, valid for `RESULT_TTL`). With neither, a
large upload is a 413 that says what to configure. A worker that only fetches by URL
(worker-esrgan) gets every upload this way.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from typing import BinaryIO

from itsdangerous import BadSignature, URLSafeTimedSerializer

from integration.errors import ApiError, validation_error
from integration.files.store import DirectoryStore, S3Store, file_key

ROUTE = "/files/"
_DATA_URI = re.compile(r"^data:([\w/+.-]+)?(?:;[\w=.-]+)*;base64,")
_EXTENSIONS = {"audio/mpeg": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav", "image/jpeg": ".jpg", "audio/mp4": ".m4a"}


class FileLinks:
    """Signs and checks the URLs through which a worker fetches an upload from podrelay."""

    def __init__(self, secret_key: str, max_age: int, public_base_url: str | None):
        self._serializer = URLSafeTimedSerializer(secret_key, salt="podrelay.input-file")
        self.max_age = max_age
        self.base = (public_base_url or "").rstrip("/")

    def url(self, key: str) -> str | None:
        """An absolute signed URL of a stored upload; None without PUBLIC_BASE_URL."""
        if not self.base:
            return None
        return f"{self.base}{ROUTE}{self._serializer.dumps(key)}/{key.rsplit('/', 1)[1]}"

    def key(self, token: str) -> str | None:
        """The file key a token names, or None if forged, altered or expired."""
        try:
            key = self._serializer.loads(token, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        return key if isinstance(key, str) else None


def extension(media_type: str | None) -> str:
    """A file name extension for a media type (runpod-python's rp_download names files by it)."""
    if not media_type:
        return ".bin"
    return _EXTENSIONS.get(media_type) or mimetypes.guess_extension(media_type) or ".bin"


def data_uri(value: str, param: str) -> tuple[bytes, str] | None:
    """The bytes and media type of a base64 data URI; None for anything else (a URL).
    A data URI whose base64 is broken is a 400 naming the field."""
    found = _DATA_URI.match(value) if isinstance(value, str) else None
    if not found:
        return None
    try:
        return base64.b64decode(value[found.end() :], validate=True), found.group(1) or "application/octet-stream"
    except (binascii.Error, ValueError):
        raise validation_error(f"Invalid value for '{param}': the data URI's base64 is not valid.", param) from None


class Uploads:
    """Moves a job's large uploads to the blob store and answers the URLs workers fetch."""

    def __init__(self, files: DirectoryStore | S3Store, links: FileLinks, inline_max: int, ttl: int):
        self.files, self.links, self.inline_max, self.ttl = files, links, inline_max, ttl

    def reachable(self) -> bool:
        """Whether a worker can be handed a URL: a bucket that presigns, or PUBLIC_BASE_URL."""
        return self.files.presigns or bool(self.links.base)

    def stage(self, job_id: str, param: str, source: BinaryIO | bytes, media_type: str, size: int) -> str:
        """Store one upload of job `job_id` and answer the URL its worker fetches it from."""
        if not self.reachable():
            raise ApiError(
                413,
                "payload_too_large",
                f"'{param}' is {size / 1_048_576:.1f} MB, over INLINE_INPUT_MAX ({self.inline_max} bytes), and the "
                "worker could not fetch it: set FILES_URL to an S3 bucket, or PUBLIC_BASE_URL so workers reach podrelay",
                param=param,
            )
        key = file_key(job_id, f"in-{param}{extension(media_type)}")
        self.files.put(key, source, media_type)
        return self.files.fetch_url(key, self.ttl) or self.links.url(key)

    def request_files(self, job_id: str, request: dict, params: tuple[str, ...], by_url: frozenset[str]) -> dict:
        """`request` with its large data URIs (and, for fields in `by_url`, all of them) stored
        and replaced by URLs; small ones stay inline."""
        staged = dict(request)
        for param in params:
            found = data_uri(request.get(param), param)
            if found is None:
                continue
            data, media_type = found
            if len(data) > self.inline_max or (param in by_url and self.reachable()):
                staged[param] = self.stage(job_id, param, data, media_type, len(data))
        return staged
