"""worker-esrgan: upscaling with Real-ESRGAN.

Follows runpod-workers/worker-esrgan: `src/rp_schemas.py` (INPUT_SCHEMA, checked by
rp_validator: `data_url` required, `model` one of four, `scale` above 0 and below 16,
`tile`, `tile_pad`, `pre_pad`, `output_type` individual or zip), `src/rp_handler.py` (the
image is fetched by `rp_download.file`, which takes http(s) URLs only; the output is the
list of uploaded files' URLs from `rp_upload.files`; without a bucket runpod-python saves
them under `simulated_uploaded/` and the list holds those local paths).
"""

from __future__ import annotations

from integration.adapters.base import Extras, Param, WorkerError, is_url, output_error, unsupported
from integration.config import Settings
from integration.surfaces.outputs import OutputError, ResultContext, file_item

NAME = "worker-esrgan"
SURFACES = ("upscale",)
MODELS = ("RealESRGAN_x4plus", "RealESRNet_x4plus", "RealESRGAN_x4plus_anime_6B", "RealESRGAN_x2plus")
PARAMS = {
    "data_url": Param(str),
    "model": Param(str, lambda m: m in MODELS, f"one of {', '.join(MODELS)}"),
    "scale": Param(float, lambda s: 0 < s < 16, "above 0 and below 16"),
    "tile": Param(int),
    "tile_pad": Param(int),
    "pre_pad": Param(int),
    "output_type": Param(str, lambda t: t in ("individual", "zip"), "individual or zip"),
}
BY_URL = frozenset({"image"})  # rp_download fetches it: an upload is handed over as a URL (integration/files/inputs.py)
EXTRAS = Extras(NAME, PARAMS, strict=True, derived=frozenset({"data_url", "scale", "output_type"}))


def to_input(surface: str, request: dict, model: str, settings: Settings) -> dict:
    """`data_url`, `scale`, and the Real-ESRGAN model made for that scale."""
    if not is_url(request["image"]):
        raise unsupported(
            "image", f"{NAME} fetches the image by URL: send an https URL, or set FILES_URL or PUBLIC_BASE_URL for uploads"
        )
    scale = request.get("scale", 4)
    job_input = {"data_url": request["image"], "scale": float(scale), "model": "RealESRGAN_x2plus" if scale == 2 else MODELS[0]}
    job_input.update(EXTRAS.take(request, {"image", "scale"}))
    return job_input


def to_result(surface: str, output, ctx: ResultContext) -> dict:
    """Each upscaled file's URL; a local path means the worker has no bucket to upload to."""
    problem = output_error(output)
    if problem:
        raise WorkerError(problem)
    if not isinstance(output, list) or not output:
        raise OutputError("worker-esrgan's output is not a list of files")
    local = [item for item in output if not is_url(item)]
    if local:
        raise WorkerError(
            f"{NAME} saved its output on the worker ({local[0]}) instead of uploading it: "
            "set the endpoint's BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY"
        )
    return {"created": ctx.created, "data": [file_item(url) for url in output]}
