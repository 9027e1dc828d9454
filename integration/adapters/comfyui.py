"""worker-comfyui: any ComfyUI workflow, with podrelay's fields put into its placeholders.

Follows runpod-workers/worker-comfyui: `handler.py` (`validate_input`: `workflow` is
required, `images` is a list of `{"name", "image"}` with base64 or a data URI, uploaded to
ComfyUI's input folder by `upload_images`; the output of 5.x `{"images": [{"filename",
"type": "base64" | "s3_url", "data"}], "errors"?}`, an error `{"error", "details"}`; before
5.0.0 `{"status": "success", "message": <URL or base64>}`, README "Breaking Change in
Output Format (5.0.0+)").

The workflow comes from `COMFYUI_WORKFLOW_<SURFACE>[__<MODEL>]` (a file with the workflow
in ComfyUI's API format, or the JSON itself), or from the request's own `workflow`. Its
placeholders are strings: `"{{prompt}}"`, `"{{negative_prompt}}"`, `"{{width}}"`,
`"{{height}}"`, `"{{batch_size}}"`, `"{{seed}}"`, `"{{image}}"` (the uploaded input image's
name), `"{{strength}}"`; a value that is exactly a placeholder becomes the typed value,
and one inside a longer string is replaced as text.
"""

from __future__ import annotations

import json
import random
import re
from functools import cache
from pathlib import Path

from integration.adapters.base import WorkerError, is_url, message_of, unsupported
from integration.config import Settings
from integration.surfaces.outputs import OutputError, ResultContext, file_item

NAME = "worker-comfyui"
SURFACES = ("images", "image_edit")
INPUT_IMAGE = "podrelay-input.png"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@cache
def _read(source: str) -> dict:
    text = source if source.lstrip().startswith("{") else Path(source).read_text()
    workflow = json.loads(text)
    if not isinstance(workflow, dict):
        raise ValueError("a ComfyUI workflow is a JSON object of nodes")
    return workflow


def workflow_for(settings: Settings, surface: str, model: str) -> dict | None:
    """The configured workflow for a surface and model, or None."""
    source = settings.comfyui_workflow_for(surface, model)
    return _read(source) if source else None


def _fill(node, values: dict):
    if isinstance(node, dict):
        return {key: _fill(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(value, values) for value in node]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), node)
    return node


def to_input(surface: str, request: dict, model: str, settings: Settings) -> dict:
    """`workflow` with the request's values in its placeholders, and the input image for edits."""
    workflow = request.get("workflow") or workflow_for(settings, surface, model)
    if not isinstance(workflow, dict):
        variable = f"COMFYUI_WORKFLOW_{surface.upper()}"
        raise unsupported("workflow", f"{NAME} needs a workflow: set {variable} or send 'workflow' (ComfyUI's API format)")
    width, height = (int(x) for x in request.get("size", "1024x1024").split("x"))
    values = {
        "prompt": request["prompt"],
        "negative_prompt": request.get("negative_prompt", ""),
        "width": width,
        "height": height,
        "batch_size": request.get("n", 1),
        "seed": request.get("seed", random.randrange(2**32)),
        "strength": request.get("strength", 0.75),
        "image": INPUT_IMAGE,
    }
    job_input = {"workflow": _fill(workflow, values)}
    if surface == "image_edit":
        if is_url(request["image"]):
            raise unsupported("image", f"{NAME} takes input images inline: send the image as a data URI")
        job_input["images"] = [{"name": INPUT_IMAGE, "image": request["image"]}]
    return job_input


def to_result(surface: str, output, ctx: ResultContext) -> dict:
    """`{"created", "data": [...]}` from 5.x's image objects or 4.x's single `message`."""
    if not isinstance(output, dict):
        raise OutputError("worker-comfyui's output is not an object")
    if output.get("error"):
        raise WorkerError(message_of(output))
    if isinstance(output.get("images"), list):
        if not output["images"]:
            raise WorkerError(message_of(output.get("errors")) or "the workflow produced no images")
        return {"created": ctx.created, "data": [file_item(image.get("data")) for image in output["images"]]}
    if output.get("status") == "success" and isinstance(output.get("message"), str):
        return {"created": ctx.created, "data": [file_item(output["message"])]}
    raise OutputError("worker-comfyui's output has no images")
