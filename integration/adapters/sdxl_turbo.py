"""worker-sdxl-turbo: fast text to image at 512 x 512.

Follows runpod-workers/worker-sdxl-turbo: `schemas.py` (INPUT_SCHEMA, checked by
rp_validator: `prompt` required, `height` and `width` 512 (from 1.1.0; 64 to 1024 in
steps of 8 in 1.0.0), `num_inference_steps` 1 to 8, `guidance_scale` 0 to 2, `num_images`
1 to 4, no other key), `handler.py` (the output `{"images": [{"image": base64, "seed"}],
"generation_time", "parameters"}`; an error `{"error": "Input validation failed: ..."}`).
"""

from __future__ import annotations

from integration.adapters.base import Extras, Param, check, unsupported
from integration.config import Settings
from integration.surfaces.images import image_result
from integration.surfaces.outputs import ResultContext

NAME = "worker-sdxl-turbo"
SURFACES = ("images",)
PARAMS = {
    "prompt": Param(str),
    "negative_prompt": Param(str),
    "height": Param(int, lambda h: h == 512, "512"),
    "width": Param(int, lambda w: w == 512, "512"),
    "seed": Param(int),
    "num_inference_steps": Param(int, lambda s: 1 <= s <= 8, "1 to 8"),
    "guidance_scale": Param(float, lambda g: 0.0 <= g <= 2.0, "0 to 2"),
    "num_images": Param(int, lambda n: 5 > n > 0, "1 to 4"),
}
EXTRAS = Extras(NAME, PARAMS, strict=True, derived=frozenset({"prompt", "negative_prompt", "height", "width", "num_images"}))


def to_input(surface: str, request: dict, model: str, settings: Settings) -> dict:
    """Prompt, 512 x 512, up to four images."""
    if request.get("size", "512x512") != "512x512":
        raise unsupported("size", f"{NAME} makes 512x512 images only")
    check(NAME, "n", request.get("n", 1), PARAMS["num_images"])
    job_input = {"prompt": request["prompt"], "num_images": request.get("n", 1), "width": 512, "height": 512}
    if "negative_prompt" in request:
        job_input["negative_prompt"] = request["negative_prompt"]
    job_input.update(EXTRAS.take(request, {"prompt", "negative_prompt", "n", "size", "response_format"}))
    return job_input


def to_result(surface: str, output, ctx: ResultContext) -> dict:
    """`{"created", "data": [{b64_json}]}` from `images: [{"image"}]`."""
    if isinstance(output, dict) and isinstance(output.get("images"), list):
        output = {"images": output["images"]}
    return image_result(output, ctx)
