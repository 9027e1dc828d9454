"""Binary results (images, audio, video) as files, and the signed links to them.

A job's result keeps OpenAI's shape: `data` items that are a worker's `url`, a reference
to a file in the blob store (`file`, see `results.py`), or, for jobs kept before the store,
inline `b64_json`. This module tells their media type and signs expiring download URLs
(itsdangerous, valid for `RESULT_TTL`) that work without an API key, for n8n, browsers and
webhook receivers: the API and webhook bodies show a stored file as such a link.
"""

from __future__ import annotations

import base64
import binascii
import copy

from itsdangerous import BadSignature, URLSafeTimedSerializer

ROUTE = "/downloads/"
INLINE_LIMIT = 16 * 1024  # base64 characters; larger items are linked in webhook bodies

_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"ID3", "audio/mpeg"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
]


def content_type(data: bytes) -> str:
    """The media type of a file, from its first bytes."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return "application/octet-stream"


def items(result: dict | None) -> list[dict]:
    """The file items of a result (`data: [{file} | {b64_json} | {url}]`), in order."""
    data = result.get("data") if isinstance(result, dict) else None
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict) and ("file" in item or "b64_json" in item or "url" in item)]


def decode(item: dict) -> bytes | None:
    """The bytes of an inline item; None when it is a link or not valid base64."""
    try:
        return base64.b64decode(item["b64_json"], validate=True) if "b64_json" in item else None
    except (binascii.Error, ValueError, TypeError):
        return None


class DownloadLinks:
    """Signs and checks download URLs for (job, item) pairs."""

    def __init__(self, secret_key: str, max_age: int, public_base_url: str | None):
        self._serializer = URLSafeTimedSerializer(secret_key, salt="podrelay.download")
        self.max_age = max_age
        self.base = (public_base_url or "").rstrip("/")

    def url(self, job_id: str, index: int) -> str:
        """A signed link to item `index` of the job's result (absolute under PUBLIC_BASE_URL)."""
        return f"{self.base}{ROUTE}{self._serializer.dumps([job_id, index])}"

    def target(self, token: str) -> tuple[str, int] | None:
        """The (job id, item index) a token names, or None if forged, altered or expired."""
        try:
            job_id, index = self._serializer.loads(token, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        return (job_id, index) if isinstance(job_id, str) and isinstance(index, int) else None

    def linked(self, job_data: dict) -> dict:
        """A job object whose stored files (and large inline ones) are shown as download links."""
        result = job_data.get("result")
        if not any("file" in item or len(item.get("b64_json", "")) > INLINE_LIMIT for item in items(result)):
            return job_data
        job_data = {**job_data, "result": copy.deepcopy(result)}
        for index, item in enumerate(items(job_data["result"])):
            if "file" in item:
                item["url"] = self.url(job_data["id"], index)
                del item["file"]
            elif len(item.get("b64_json", "")) > INLINE_LIMIT:
                del item["b64_json"]
                item["url"] = self.url(job_data["id"], index)
        return job_data
