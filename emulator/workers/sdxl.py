"""worker-sdxl, emulated, with one-colour PNGs for images.

Follows runpod-workers/worker-sdxl: `schemas.py` INPUT_SCHEMA (rp_validator; `prompt` has
no default, so leaving it out is a schema error), `handler.py` (`{"error": errors}` for a
refused input; with `image_url` the refiner alone runs, and diffusers' `load_image` takes
an http(s) URL or a file, or raises ValueError; `make_scheduler`'s names, a KeyError for
another; images as PNG data URIs without a bucket; 2.x answers `{"images", "image_url",
"seed"}`, 1.0 `{"image_url"}` for one image and `{"images"}` for more).
"""

from __future__ import annotations

import base64
import random

from emulator.media import tiny_png
from emulator.validator import validate

NAME = "worker-sdxl"
VERSIONS = ("2.1", "1.0")
AGGREGATE = False
BUCKET = False  # deployed without a bucket by default: files come back inline
SCHEDULERS = ("PNDM", "KLMS", "DDIM", "K_EULER", "K_EULER_ANCESTRAL", "DPMSolverMultistep", "DPMSolverSinglestep")


def _schema() -> dict:
    return {
        "prompt": {"type": str, "required": False},
        "negative_prompt": {"type": str, "required": False, "default": None},
        "height": {"type": int, "required": False, "default": 1024},
        "width": {"type": int, "required": False, "default": 1024},
        "seed": {"type": int, "required": False, "default": None},
        "scheduler": {"type": str, "required": False, "default": "DDIM"},
        "num_inference_steps": {"type": int, "required": False, "default": 25},
        "refiner_inference_steps": {"type": int, "required": False, "default": 50},
        "guidance_scale": {"type": float, "required": False, "default": 7.5},
        "strength": {"type": float, "required": False, "default": 0.3},
        "image_url": {"type": str, "required": False, "default": None},
        "num_images": {"type": int, "required": False, "default": 1, "constraints": lambda n: 3 > n > 0},
        "high_noise_frac": {"type": float, "required": False, "default": None},
    }


def _image(env, job_id: str, index: int, seed: str) -> str:
    data = tiny_png(seed)
    if env.upload:
        return env.upload(data, f"{job_id}-{index}.png")
    return "data:image/png;base64," + base64.b64encode(data).decode()


def make_handler(env):
    """`generate_image`."""

    def handler(job):
        checked = validate(job["input"], _schema())
        if "errors" in checked:
            return {"error": checked["errors"]}
        job_input = checked["validated_input"]
        if job_input["seed"] is None:
            job_input["seed"] = random.randrange(2**16)
        if job_input["scheduler"] not in SCHEDULERS:
            raise KeyError(job_input["scheduler"])
        if job_input["image_url"]:
            if not str(job_input["image_url"]).startswith(("http://", "https://")):
                raise ValueError(
                    f"Incorrect path or URL. URLs must start with `http://` or `https://`, and {job_input['image_url']} is not a valid path."
                )
            count = 1
        else:
            count = job_input["num_images"]
        images = [_image(env, job["id"], i, f"{job_input['prompt']}-{job_input['seed']}-{i}") for i in range(count)]
        if env.version.startswith("1."):
            return {"image_url": images[0]} if len(images) == 1 else {"images": images}
        return {"images": images, "image_url": images[0], "seed": job_input["seed"]}

    return handler
