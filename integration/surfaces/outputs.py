"""What every surface's output side shares: the error for an unreadable output, the
context a normaliser gets, and reading file items (base64, data URIs or URLs).

Outputs of any worker become OpenAI's shapes, so clients see one shape whatever worker
ran the job; media results are `{"created", "data": [{b64_json}|{url}]}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class OutputError(ValueError):
    """The worker's output does not have a shape this surface understands."""


@dataclass(frozen=True)
class ResultContext:
    """What a normaliser may need beside the output."""

    job_id: str
    model: str
    created: int
    request: dict  # the worker's input
    options: dict = field(default_factory=dict)  # how the client asked for the result (the surface's `shape` fields)


_DATA_URI = re.compile(r"^data:[\w/+.-]+;base64,")


def file_item(item) -> dict:
    """One file of an output as a result item: `{"url"}` for a link, else `{"b64_json"}`."""
    if isinstance(item, dict):
        for key in ("b64_json", "image", "base64", "url", "image_url"):
            if isinstance(item.get(key), str):
                return file_item(item[key])
        raise OutputError("image item has no image")
    if not isinstance(item, str) or not item:
        raise OutputError("image item is not a string")
    if item.startswith(("http://", "https://")):
        return {"url": item}
    return {"b64_json": _DATA_URI.sub("", item)}


_MEDIA_KEYS = (
    "images",
    "videos",
    "audios",
    "image",
    "video",
    "audio",
    "audio_url",
    "video_url",
    "image_url",
    "url",
    "data",
    "output",
)


def media_result(output, ctx: ResultContext) -> dict:
    """A media surface's result (speech, video, music, image edits) from any worker's output:
    a file, a list of files, base64, data URIs or URLs, found under the common keys."""
    found = None
    if isinstance(output, dict):
        for key in _MEDIA_KEYS:
            if output.get(key):
                found = output[key]
                break
    elif isinstance(output, (list, str)):
        found = output
    if not found:
        raise OutputError("output has no file")
    files = found if isinstance(found, list) else [found]
    result = {"created": ctx.created, "data": [file_item(item) for item in files]}
    if isinstance(output, dict) and isinstance(output.get("format"), str):
        result["format"] = output["format"]
    return result
