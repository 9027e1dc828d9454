"""worker-sdxl: text to image, and image to image through its refiner.

Follows runpod-workers/worker-sdxl: `schemas.py` (INPUT_SCHEMA, checked by rp_validator:
no other key, `num_images` 1 or 2; `prompt` has no default, so it must be sent),
`handler.py` (`generate_image`: with `image_url` only the refiner runs, one image at the
input's size; `make_scheduler`'s names; the output `{"images", "image_url", "seed"}` in
2.x, `{"image_url"}` or `{"images"}` in 1.0; images are bucket URLs or PNG data URIs).
`image_url` goes to diffusers' `load_image`, which fetches http(s) URLs and nothing else.
"""

from __future__ import annotations

from integration.adapters.base import Extras, Param, check, is_url, unsupported
from integration.config import Settings
from integration.surfaces.images import image_result
from integration.surfaces.outputs import ResultContext

NAME = "worker-sdxl"
SURFACES = ("images", "image_edit")
SCHEDULERS = ("PNDM", "KLMS", "DDIM", "K_EULER", "K_EULER_ANCESTRAL", "DPMSolverMultistep", "DPMSolverSinglestep")
PARAMS = {
    "prompt": Param(str),
    "negative_prompt": Param(str),
    "height": Param(int),
    "width": Param(int),
    "seed": Param(int),
    "scheduler": Param(str, lambda s: s in SCHEDULERS, f"one of {', '.join(SCHEDULERS)}"),
    "num_inference_steps": Param(int),
    "refiner_inference_steps": Param(int),
    "guidance_scale": Param(float),
    "strength": Param(float),
    "image_url": Param(str),
    "num_images": Param(int, lambda n: 3 > n > 0, "1 or 2"),
    "high_noise_frac": Param(float),
}
DERIVED = frozenset({"prompt", "negative_prompt", "height", "width", "num_images", "image_url"})
EXTRAS = Extras(NAME, PARAMS, strict=True, derived=DERIVED)


def to_input(surface: str, request: dict, model: str, settings: Settings) -> dict:
    """The worker's own keys; no `model` (its schema refuses one)."""
    job_input = {"prompt": request["prompt"]}
    if "negative_prompt" in request:
        job_input["negative_prompt"] = request["negative_prompt"]
    if surface == "image_edit":
        if not is_url(request["image"]):
            raise unsupported("image", f"{NAME} fetches the input image by URL: send an https URL, not a data URI")
        if request.get("n", 1) != 1 or "size" in request:
            field = "n" if request.get("n", 1) != 1 else "size"
            raise unsupported(field, f"{NAME} refines one image at the input image's size ('n' 1, no 'size')")
        job_input["image_url"] = request["image"]
        if "strength" in request:
            job_input["strength"] = request["strength"]
        consumed = {"prompt", "negative_prompt", "image", "n", "size", "strength"}
    else:
        check(NAME, "n", request.get("n", 1), PARAMS["num_images"])
        job_input["num_images"] = request.get("n", 1)
        if "size" in request:
            width, height = request["size"].split("x")
            job_input["width"], job_input["height"] = int(width), int(height)
        consumed = {"prompt", "negative_prompt", "n", "size", "response_format"}
    job_input.update(EXTRAS.take(request, consumed))
    return job_input


def to_result(surface: str, output, ctx: ResultContext) -> dict:
    """`{"created", "data": [{b64_json}|{url}]}` from `images` (or 1.0's single `image_url`)."""
    if isinstance(output, dict) and isinstance(output.get("images"), list):
        output = {"images": output["images"]}  # 2.x repeats the first as `image_url`
    return image_result(output, ctx)
