"""worker-esrgan, emulated, with one-colour PNGs for upscaled images.

Follows runpod-workers/worker-esrgan: `src/rp_schemas.py` INPUT_SCHEMA, `src/rp_handler.py`
(`handler` reads `validated_input['validated_input']` before it looks at the errors, so a
refused input ends in a KeyError; `rp_download.file` fetches `data_url`, refusing schemes
other than http(s); the output is `rp_upload.files`' list: bucket URLs, or without a
bucket the local `simulated_uploaded/...` paths runpod-python's fallback writes).
"""

from __future__ import annotations

import uuid

from emulator.media import tiny_png
from emulator.validator import validate

NAME = "worker-esrgan"
VERSIONS = ("latest",)
AGGREGATE = False
BUCKET = True  # useless without one: the emulated endpoint has a bucket unless told `+nobucket`
MODELS = ["RealESRGAN_x4plus", "RealESRNet_x4plus", "RealESRGAN_x4plus_anime_6B", "RealESRGAN_x2plus"]


def _schema() -> dict:
    return {
        "data_url": {"type": str, "required": True},
        "model": {"type": str, "required": False, "default": "RealESRGAN_x4plus", "constraints": lambda m: m in MODELS},
        "scale": {"type": float, "required": False, "default": 4, "constraints": lambda s: 0 < s < 16},
        "tile": {"type": int, "required": False, "default": 0},
        "tile_pad": {"type": int, "required": False, "default": 10},
        "pre_pad": {"type": int, "required": False, "default": 0},
        "output_type": {
            "type": str,
            "required": False,
            "default": "individual",
            "constraints": lambda t: t in ["individual", "zip"],
        },
    }


def make_handler(env):
    """`handler`."""

    def handler(job):
        validated_input = validate(job["input"], _schema())
        validated_input["validated_input"].get("output_type", "individual")  # the worker's own KeyError on a refused input
        job_input = validated_input["validated_input"]
        url = job_input["data_url"]
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Blocked URL scheme: {url.split(':', 1)[0]!r}")
        source = env.fetch(url) if env.fetch else b""
        picture = tiny_png(f"upscaled-{len(source)}-{job_input['scale']}")
        name = f"{uuid.uuid4().hex[:8]}.png"
        return [env.upload(picture, name) if env.upload else f"simulated_uploaded/{name}"]

    return handler
