"""The request fields every surface shares, and the rules that go with them.

Limits follow the seed gateway (seed 001). Unknown keys are kept (`INCLUDE`): they pass
through to the RunPod worker's input (`extras`). A failed validation becomes a 400
`validation_error` naming the first bad field (`load`).
"""

from __future__ import annotations

import re
import weakref
from urllib.parse import urlsplit

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from integration.errors import validation_error
from integration.jobs.events import ASKABLE_EVENT_NAMES
from integration.surfaces.compiled import Fallback, Loader, compile_schema

MAX_STRING = 1_000_000  # a prompt or message may be long, but not unbounded
MAX_ITEMS = 2048
OWN_FIELDS = {
    "model",
    "webhook_url",
    "webhook_events",
    "policy",
    "priority",
    "deadline",
}  # podrelay consumes these; the rest may pass through
# Worker input keys podrelay sets from the request's own fields, prices among them: a
# pass-through field may never set them (`num_images: 1000` beside `n: 1`).
DERIVED = {"num_images", "width", "height", "num_frames", "sampling_params", "max_tokens", "duration"}


class PolicySchema(Schema):
    executionTimeout = fields.Integer(strict=True, validate=validate.Range(min=5_000, max=7 * 24 * 3600 * 1000))  # noqa: N815
    lowPriority = fields.Boolean()  # noqa: N815
    ttl = fields.Integer(strict=True, validate=validate.Range(min=10_000, max=7 * 24 * 3600 * 1000))


class WebhookUrl(fields.String):
    """An absolute http(s) URL; IPv6 literals included. Which addresses may be called is
    decided after DNS resolution (integration/outbound.py), not here."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise ValidationError("Not a valid URL.") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or len(text) > 2048 or any(c.isspace() for c in text):
            raise ValidationError("Must be an absolute http(s) URL of at most 2048 characters.")
        if not valid_hostname(parts.hostname):
            raise ValidationError("The URL's host is not a valid host name.")
        return text


def valid_hostname(host: str) -> bool:
    """A DNS name (RFC 1035: labels of 1 to 63 characters, 253 in all) or an IP literal."""
    if ":" in host:  # an IPv6 literal; the address check comes later
        return True
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(0 < len(label) <= 63 for label in labels)


class MediaUrl(fields.String):
    """A file the worker fetches: an https URL, or (where the surface takes one, `data=True`)
    a base64 data URI (`data:image/png;base64,...`). Plain http is refused: the file would
    travel unprotected to the GPU worker, and a request could point it at a local service."""

    def __init__(self, *args, data: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.data = data

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if self.data and text.startswith("data:") and ";base64," in text[:100]:
            return text  # as large as the route's body limit (UPLOAD_MAX_BYTES); a large one goes by URL
        try:
            parts = urlsplit(text)
        except ValueError:
            parts = None
        if parts is None or parts.scheme != "https" or not parts.hostname or len(text) > 2048 or any(c.isspace() for c in text):
            raise ValidationError("Must be an https URL or a base64 data URI." if self.data else "Must be an https URL.")
        if not valid_hostname(parts.hostname):
            raise ValidationError("The URL's host is not a valid host name.")
        return text


class RequestSchema(Schema):
    """The fields of every enqueue request: model, webhook_url, policy; unknown keys kept."""

    class Meta:
        unknown = INCLUDE

    model = fields.String(validate=validate.Length(min=1, max=200))
    webhook_url = WebhookUrl()
    # Which of the job's events go to `webhook_url` (Replicate's `webhook_events_filter`); default: every
    # status change (`job.progress` only when named).
    webhook_events = fields.List(
        fields.String(validate=validate.OneOf(ASKABLE_EVENT_NAMES)), validate=validate.Length(min=1, max=len(ASKABLE_EVENT_NAMES))
    )
    # RunPod's execution policy (executionTimeout, lowPriority, ttl), sent beside `input`.
    policy = fields.Nested(PolicySchema)
    # Its place among the key's own waiting jobs (integration/jobs/fairness.py); not RunPod's lowPriority.
    priority = fields.String(validate=validate.OneOf(["high", "normal", "low"]))
    # When it must be finished by (RFC 3339): cancelled then, never submitted after it (or `Cancel-After`).
    deadline = fields.AwareDateTime(format="iso")


def size_field() -> fields.String:
    """`size` as WIDTHxHEIGHT (images, video)."""
    return fields.String(
        validate=validate.Regexp(r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$", error="Must be WIDTHxHEIGHT, e.g. 1024x1024.")
    )


def set_size(request: dict, job_input: dict) -> None:
    """A request's `size` as the worker's `width` and `height`."""
    if "size" in request:
        width, height = request["size"].split("x")
        job_input["width"], job_input["height"] = int(width), int(height)


def extras(request: dict, consumed: set[str]) -> dict:
    """The request's fields that neither the surface nor podrelay consumed: they pass through,
    except one podrelay derives itself (a 400 naming it)."""
    found = {k: v for k, v in request.items() if k not in consumed and k not in OWN_FIELDS}
    for name in found:
        if name in DERIVED:
            raise validation_error(f"Invalid field '{name}': podrelay sets it from the request's own fields", name)
    return found


def _first_error(messages, path: str = "") -> tuple[str, str]:
    """The first (param, message) of marshmallow's nested error dict, as `a[0].b`."""
    if isinstance(messages, dict):
        key = next(iter(messages))
        if isinstance(key, int):
            step = f"{path}[{key}]"
        elif key == "_schema":
            step = path
        else:
            step = f"{path}.{key}" if path else str(key)
        return _first_error(messages[key], step)
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], path) if not isinstance(messages[0], str) else (path, messages[0])
    return path, str(messages)


_LOADERS: weakref.WeakKeyDictionary[Schema, Loader | None] = weakref.WeakKeyDictionary()


def load(schema: Schema, body: dict) -> dict:
    """Validate `body`; raise a 400 naming the first bad field.

    A body the schema's compiled loader accepts is answered by it (the same result, a
    fraction of the time); any other is loaded by marshmallow, which names the error."""
    if schema not in _LOADERS:
        _LOADERS[schema] = compile_schema(schema)
    loader = _LOADERS[schema]
    if loader is not None:
        try:
            return loader(body)
        except Fallback:
            pass
    try:
        return schema.load(body)
    except ValidationError as error:
        param, message = _first_error(error.messages)
        raise validation_error(f"Invalid value for '{param}': {message}", param or None) from None


DEADLINE_MAX = 7 * 24 * 3600.0  # a deadline further off than this is refused
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def deadline_of(request: dict, cancel_after: str | None, now: float) -> float | None:
    """When a validated request's job must end: its `deadline`, or now plus a `Cancel-After`
    header (Replicate's duration: `90`, `90s`, `5m`, `1h30m`), the earlier of the two; 400 naming
    the one that is in the past, unreadable or more than a week away."""
    found: list[tuple[float, str]] = []
    if request.get("deadline") is not None:
        found.append((request["deadline"].timestamp(), "deadline"))
    if cancel_after is not None:
        matched = _DURATION.match(cancel_after.strip())
        if not cancel_after.strip() or matched is None:
            raise validation_error("Invalid 'Cancel-After' header: a duration such as 90s, 5m or 1h30m", "Cancel-After")
        hours, minutes, seconds = (float(part or 0) for part in matched.groups())
        found.append((now + hours * 3600 + minutes * 60 + seconds, "Cancel-After"))
    if not found:
        return None
    when, name = min(found)
    if when <= now + 1:
        raise validation_error(f"Invalid value for '{name}': it has passed (or is less than a second away)", name)
    if when > now + DEADLINE_MAX:
        raise validation_error(f"Invalid value for '{name}': more than 7 days away", name)
    return when
