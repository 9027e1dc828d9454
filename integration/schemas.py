"""Request schemas of the enqueue routes, with the limits of the seed gateway (seed 001).

Unknown keys are kept (`INCLUDE`): they pass through to the RunPod worker's input.
A failed validation becomes a 400 `validation_error` naming the first bad field.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from integration.errors import validation_error

MAX_STRING = 1_000_000  # a prompt or message may be long, but not unbounded
MAX_ITEMS = 2048


class StringOrStrings(fields.Field):
    """A non-empty string, or a non-empty list of non-empty strings (embeddings' `input`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            if not value:
                raise ValidationError("Must not be empty.")
            return value
        if isinstance(value, list) and value and len(value) <= MAX_ITEMS:
            if all(isinstance(item, str) and item for item in value):
                return value
            # token arrays, as OpenAI allows them
            if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
                return value
        raise ValidationError(f"Must be a non-empty string or a list of 1 to {MAX_ITEMS} non-empty strings.")


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
            if len(text) > MAX_STRING * 20:
                raise ValidationError("Data URI too large.")
            return text
        try:
            parts = urlsplit(text)
        except ValueError:
            parts = None
        if parts is None or parts.scheme != "https" or not parts.hostname or len(text) > 2048 or any(c.isspace() for c in text):
            raise ValidationError("Must be an https URL or a base64 data URI." if self.data else "Must be an https URL.")
        if not valid_hostname(parts.hostname):
            raise ValidationError("The URL's host is not a valid host name.")
        return text


class _Base(Schema):
    class Meta:
        unknown = INCLUDE

    model = fields.String(validate=validate.Length(min=1, max=200))
    webhook_url = WebhookUrl()
    # RunPod's execution policy (executionTimeout, lowPriority, ttl), sent beside `input`.
    policy = fields.Nested(PolicySchema)


class MessageSchema(Schema):
    class Meta:
        unknown = INCLUDE

    role = fields.String(required=True, validate=validate.OneOf(["system", "developer", "user", "assistant", "tool"]))
    content = fields.Raw(allow_none=True, load_default=None)

    @validates_schema
    def _content_shape(self, data, **kwargs):
        content = data.get("content")
        if content is None:
            if data.get("role") != "assistant":
                raise ValidationError("Must be a string or a list of content parts.", "content")
        elif isinstance(content, str):
            if len(content) > MAX_STRING:
                raise ValidationError(f"Longer than {MAX_STRING} characters.", "content")
        elif not (isinstance(content, list) and len(content) <= MAX_ITEMS and all(isinstance(part, dict) for part in content)):
            raise ValidationError("Must be a string or a list of content parts.", "content")


class ChatSchema(_Base):
    messages = fields.List(fields.Nested(MessageSchema), required=True, validate=validate.Length(min=1, max=MAX_ITEMS))
    temperature = fields.Float(validate=validate.Range(min=0, max=2), allow_nan=False)
    max_tokens = fields.Integer(strict=True, validate=validate.Range(min=1, max=8192))
    stream = fields.Boolean()
    user = fields.String(validate=validate.Length(min=1, max=256))


class ImageSchema(_Base):
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=MAX_STRING))
    negative_prompt = fields.String(validate=validate.Length(min=1, max=MAX_STRING))
    n = fields.Integer(strict=True, validate=validate.Range(min=1, max=8))
    size = fields.String(
        validate=validate.Regexp(r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$", error="Must be WIDTHxHEIGHT, e.g. 1024x1024.")
    )
    response_format = fields.String(validate=validate.OneOf(["url", "b64_json"]))


class TranscriptionSchema(_Base):
    audioUrl = MediaUrl(required=True, data=False)  # noqa: N815 (the API's name)
    language = fields.String(validate=validate.Length(min=2, max=35))
    prompt = fields.String(validate=validate.Length(min=1, max=MAX_STRING))
    response_format = fields.String(validate=validate.OneOf(["json", "text", "srt", "verbose_json", "vtt"]))


class EmbeddingSchema(_Base):
    input = StringOrStrings(required=True)
    dimensions = fields.Integer(strict=True, validate=validate.Range(min=1, max=65536))
    encoding_format = fields.String(validate=validate.OneOf(["float", "base64"]))
    user = fields.String(validate=validate.Length(min=1, max=256))


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


def load(schema: Schema, body: dict) -> dict:
    """Validate `body`; raise a 400 naming the first bad field."""
    try:
        return schema.load(body)
    except ValidationError as error:
        param, message = _first_error(error.messages)
        raise validation_error(f"Invalid value for '{param}': {message}", param or None) from None


class SpeechSchema(_Base):
    input = fields.String(required=True, validate=validate.Length(min=1, max=20_000))
    voice = fields.String(validate=validate.Length(min=1, max=100))
    response_format = fields.String(validate=validate.OneOf(["mp3", "wav", "opus", "flac"]))
    speed = fields.Float(validate=validate.Range(min=0.25, max=4.0), allow_nan=False)


class VideoSchema(_Base):
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=MAX_STRING))
    image = MediaUrl()  # given: image-to-video
    negative_prompt = fields.String(validate=validate.Length(min=1, max=MAX_STRING))
    duration = fields.Float(validate=validate.Range(min=1, max=20), allow_nan=False)
    fps = fields.Integer(strict=True, validate=validate.Range(min=8, max=60))
    size = ImageSchema._declared_fields["size"]


class AudioVideoSchema(_Base):
    audioUrl = MediaUrl(required=True)  # noqa: N815 (the seed's name)
    image = MediaUrl()
    prompt = fields.String(validate=validate.Length(min=1, max=MAX_STRING))
    fps = fields.Integer(strict=True, validate=validate.Range(min=8, max=60))


class MusicSchema(_Base):
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=MAX_STRING))
    duration = fields.Float(validate=validate.Range(min=1, max=300), allow_nan=False)


class ImageEditSchema(_Base):
    image = MediaUrl(required=True)
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=MAX_STRING))
    strength = fields.Float(validate=validate.Range(min=0, max=1), allow_nan=False)
    n = fields.Integer(strict=True, validate=validate.Range(min=1, max=8))
    size = ImageSchema._declared_fields["size"]


class UpscaleSchema(_Base):
    image = MediaUrl(required=True)
    scale = fields.Integer(strict=True, validate=validate.OneOf([2, 4]))


class BackgroundRemovalSchema(_Base):
    image = MediaUrl(required=True)
