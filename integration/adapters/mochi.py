"""worker-mochi: text to video with Mochi 1.

Follows runpod-workers/worker-mochi: `src/handler.py` (`generate` reads `positive_prompt`,
`negative_prompt`, `width` 848, `height` 480, `seed`, `steps`, `cfg`, `num_frames` 31 and
`vae`, and ignores other keys; the video is written at 24 frames per second and uploaded
to UploadThing; the output is `{"result": <URL>, "status": "DONE"}`, or, when anything
fails, `{"result": "FAILED: <why>"}` as a COMPLETED job's output), `test_input.json`.
"""

from __future__ import annotations

from integration.adapters.base import Extras, Param, WorkerError, is_url, unsupported
from integration.config import Settings
from integration.surfaces.outputs import OutputError, ResultContext, file_item

NAME = "worker-mochi"
SURFACES = ("video",)
FPS = 24  # VHS_VideoCombine's frame_rate in the handler
PARAMS = {
    "positive_prompt": Param(str),
    "negative_prompt": Param(str),
    "width": Param(int),
    "height": Param(int),
    "seed": Param(int),
    "steps": Param(int),
    "cfg": Param(float),
    "num_frames": Param(int),
    "vae": Param(dict),
}
EXTRAS = Extras(NAME, PARAMS, strict=False, derived=frozenset({"positive_prompt", "width", "height", "num_frames"}))


def to_input(surface: str, request: dict, model: str, settings: Settings) -> dict:
    """The prompt, the size, and the frames the duration needs at 24 fps."""
    if "image" in request:
        raise unsupported("image", f"{NAME} makes video from text only")
    if request.get("fps", FPS) != FPS:
        raise unsupported("fps", f"{NAME} renders at {FPS} frames per second")
    width, height = (int(x) for x in request.get("size", "848x480").split("x"))
    job_input = {"positive_prompt": request["prompt"], "width": width, "height": height}
    job_input["num_frames"] = max(1, int(request.get("duration", 5) * FPS))
    if "negative_prompt" in request:
        job_input["negative_prompt"] = request["negative_prompt"]
    job_input.update(EXTRAS.take(request, {"prompt", "negative_prompt", "size", "duration", "fps"}))
    return job_input


def to_result(surface: str, output, ctx: ResultContext) -> dict:
    """The video's URL; `FAILED: ...` in `result` is the worker's error."""
    result = output.get("result") if isinstance(output, dict) else None
    if not isinstance(result, str) or not result:
        raise OutputError("worker-mochi's output has no result")
    if result.startswith("FAILED:"):
        raise WorkerError(result.removeprefix("FAILED:").strip() or "worker-mochi failed")
    if not is_url(result):
        raise OutputError("worker-mochi's result is not a URL")
    return {"created": ctx.created, "data": [file_item(result)], "format": "mp4"}
