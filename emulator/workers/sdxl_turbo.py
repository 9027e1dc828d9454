"""worker-sdxl-turbo, emulated, with one-colour PNGs for images.

Follows runpod-workers/worker-sdxl-turbo: `schemas.py` INPUT_SCHEMA (1.1.0 and later:
`height` and `width` 512 only; 1.0.0: 64 to 1024 in steps of 8), `handler.py` (`{"error":
"Input validation failed: [...]"}`; the output `{"images": [{"image": base64, "seed"}],
"generation_time", "parameters"}`).
"""

from __future__ import annotations

import base64

from emulator.media import tiny_png
from emulator.validator import validate

NAME = "worker-sdxl-turbo"
VERSIONS = ("1.1", "1.0")
AGGREGATE = False
BUCKET = False  # deployed without a bucket by default: files come back inline


def _schema(version: str) -> dict:
    if version.startswith("1.0"):
        size = lambda v: 64 <= v <= 1024 and v % 8 == 0  # noqa: E731
    else:
        size = lambda v: v == 512  # noqa: E731
    return {
        "prompt": {"type": str, "required": True},
        "negative_prompt": {"type": str, "required": False, "default": None},
        "height": {"type": int, "required": False, "default": 512, "constraints": size},
        "width": {"type": int, "required": False, "default": 512, "constraints": size},
        "seed": {"type": int, "required": False, "default": None},
        "num_inference_steps": {"type": int, "required": False, "default": 1, "constraints": lambda s: 1 <= s <= 8},
        "guidance_scale": {"type": float, "required": False, "default": 0.0, "constraints": lambda g: 0.0 <= g <= 2.0},
        "num_images": {"type": int, "required": False, "default": 1, "constraints": lambda n: 5 > n > 0},
    }


def make_handler(env):
    """`handler`, with `ModelHandler.generate_image`."""

    def handler(job):
        checked = validate(job["input"], _schema(env.version))
        if "errors" in checked:
            return {"error": f"Input validation failed: {checked['errors']}"}
        job_input = checked["validated_input"]
        seed = job_input["seed"]
        images = [
            {
                "image": base64.b64encode(tiny_png(f"{job_input['prompt']}-{i}")).decode(),
                "seed": seed + i if seed is not None else None,
            }
            for i in range(job_input["num_images"])
        ]
        parameters = {
            k: job_input[k]
            for k in ("prompt", "negative_prompt", "width", "height", "num_inference_steps", "guidance_scale", "seed")
        }
        return {"images": images, "generation_time": 0.4, "parameters": parameters}

    return handler
