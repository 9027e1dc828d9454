"""Embeddings: worker-infinity-embedding's input, and its output as OpenAI's list of embeddings."""

from __future__ import annotations

import array
import base64
import sys

from marshmallow import ValidationError, fields, validate

from integration.surfaces.fields import MAX_ITEMS, RequestSchema, extras
from integration.surfaces.outputs import OutputError, ResultContext


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


class EmbeddingSchema(RequestSchema):
    """`POST /v1/embeddings`."""

    input = StringOrStrings(required=True)
    dimensions = fields.Integer(strict=True, validate=validate.Range(min=1, max=65536))
    encoding_format = fields.String(validate=validate.OneOf(["float", "base64"]))
    user = fields.String(validate=validate.Length(min=1, max=256))


_EMBEDDING_MODELS = {"BGE_Large": "BAAI/bge-large-en-v1.5", "Bge_M3_INT8": "BAAI/bge-m3"}


def embedding_input(request: dict, model: str) -> dict:
    """worker-infinity-embedding's input: the model's name and `input`; extras pass through."""
    job_input = {"model": _EMBEDDING_MODELS.get(model, model), "input": request["input"]}
    job_input.update(extras(request, {"input"}))
    return job_input


def as_base64(vector: list) -> str:
    """A vector as OpenAI's `encoding_format: base64` sends it: little-endian float32, base64."""
    floats = array.array("f", vector)
    if sys.byteorder != "little":
        floats.byteswap()
    return base64.b64encode(floats.tobytes()).decode()


def embedding_result(output, ctx: ResultContext) -> dict:
    """The worker's vectors as `{"object": "list", "data": [{"embedding"}], "model", "usage"}`
    (base64 strings when the request asked for `encoding_format: base64`, as OpenAI's SDK does by default)."""
    data = output.get("data") if isinstance(output, dict) else output
    if not isinstance(data, list) or not data:
        raise OutputError("embedding output has no data")
    items = []
    for index, item in enumerate(data):
        vector = item.get("embedding") if isinstance(item, dict) else item
        if not isinstance(vector, (list, str)):
            raise OutputError("embedding item has no vector")
        if ctx.options.get("encoding_format") == "base64" and isinstance(vector, list):
            vector = as_base64(vector)
        items.append({"object": "embedding", "index": index, "embedding": vector})
    usage = output.get("usage") if isinstance(output, dict) else None
    model = output.get("model") if isinstance(output, dict) and isinstance(output.get("model"), str) else ctx.model
    return {"object": "list", "data": items, "model": model, "usage": usage or {"prompt_tokens": 0, "total_tokens": 0}}
