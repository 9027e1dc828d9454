"""Images: generation (worker-sdxl / flux-style workers), edits, upscale, background removal.

Generation answers OpenAI's images shape, `{"created", "data": [{b64_json}|{url}]}`,
from the workers' `images` list (or a single `image`); the other image surfaces share
the media normaliser (`outputs.media_result`).
"""

from __future__ import annotations

from marshmallow import fields, validate

from integration.surfaces.fields import MAX_STRING, MediaUrl, RequestSchema, extras, set_size, size_field
from integration.surfaces.outputs import OutputError, ResultContext, file_item


class ImageSchema(RequestSchema):
    """`POST /v1/images/generations`."""

    prompt = fields.String(required=True, validate=validate.Length(min=1, max=MAX_STRING))
    negative_prompt = fields.String(validate=validate.Length(min=1, max=MAX_STRING))
    n = fields.Integer(strict=True, validate=validate.Range(min=1, max=8))
    size = size_field()
    response_format = fields.String(validate=validate.OneOf(["url", "b64_json"]))


class ImageEditSchema(RequestSchema):
    """`POST /v1/images/edits`."""

    image = MediaUrl(required=True)
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=MAX_STRING))
    strength = fields.Float(validate=validate.Range(min=0, max=1), allow_nan=False)
    n = fields.Integer(strict=True, validate=validate.Range(min=1, max=8))
    size = size_field()


class UpscaleSchema(RequestSchema):
    """`POST /v1/images/upscale`."""

    image = MediaUrl(required=True)
    scale = fields.Integer(strict=True, validate=validate.OneOf([2, 4]))


class BackgroundRemovalSchema(RequestSchema):
    """`POST /v1/images/background-removal`."""

    image = MediaUrl(required=True)


def image_input(request: dict, model: str) -> dict:
    """An image worker's input: prompt, num_images, width/height, negative prompt; extras pass through."""
    job_input = {"prompt": request["prompt"], "num_images": request.get("n", 1), "model": model}
    if "negative_prompt" in request:
        job_input["negative_prompt"] = request["negative_prompt"]
    set_size(request, job_input)
    job_input.update(extras(request, {"prompt", "negative_prompt", "n", "size", "response_format"}))
    return job_input


def image_result(output, ctx: ResultContext) -> dict:
    """The worker's images as `{"created", "data": [{b64_json}|{url}]}`."""
    if isinstance(output, dict):
        items = output.get("images") or output.get("data")
        if items is None:
            single = output.get("image") or output.get("image_url") or output.get("url")
            items = [single] if single else None
    elif isinstance(output, (list, str)):
        items = output if isinstance(output, list) else [output]
    else:
        items = None
    if not items:
        raise OutputError("image output has no images")
    return {"created": ctx.created, "data": [file_item(item) for item in items]}


def image_edit_input(request: dict, model: str) -> dict:
    """An image-to-image worker's input."""
    job_input = {"image": request["image"], "prompt": request["prompt"], "num_images": request.get("n", 1), "model": model}
    if "strength" in request:
        job_input["strength"] = request["strength"]
    set_size(request, job_input)
    job_input.update(extras(request, {"image", "prompt", "n", "strength", "size"}))
    return job_input


def upscale_input(request: dict, model: str) -> dict:
    """An upscaler's input."""
    job_input = {"image": request["image"], "scale": request.get("scale", 4), "model": model}
    job_input.update(extras(request, {"image", "scale"}))
    return job_input


def background_removal_input(request: dict, model: str) -> dict:
    """A background remover's input."""
    job_input = {"image": request["image"], "task": "remove_background", "model": model}
    job_input.update(extras(request, {"image"}))
    return job_input
