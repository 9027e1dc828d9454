"""worker-mochi, emulated, with the start of an MP4 for video.

Follows runpod-workers/worker-mochi: `src/handler.py` (`generate` reads its keys with
defaults and ignores the rest; the video goes to UploadThing, which needs
UPLOADTHING_API_KEY; every failure is answered as `{"result": "FAILED: ..."}`, a COMPLETED
job; success is `{"result": <URL>, "status": "DONE"}`).
"""

from __future__ import annotations

from emulator.media import tiny_mp4

NAME = "worker-mochi"
VERSIONS = ("latest",)
AGGREGATE = False
BUCKET = True  # it needs one to answer at all: the emulated endpoint has one unless told `+nobucket`


def make_handler(env):
    """`generate`."""

    def handler(job):
        values = job["input"]
        try:
            prompt = values.get("positive_prompt", "")
            frames = int(values.get("num_frames", 31))
            width, height = int(values.get("width", 848)), int(values.get("height", 480))
            video = tiny_mp4(f"{prompt}-{frames}-{width}x{height}")
            if env.upload is None:
                raise ValueError("UPLOADTHING_API_KEY environment variable not set")
            return {"result": env.upload(video, f"{job['id']}.mp4"), "status": "DONE"}
        except Exception as e:  # noqa: BLE001 (as the worker does)
            return {"result": f"FAILED: {e}"}

    return handler
