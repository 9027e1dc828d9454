"""worker-comfyui, emulated, with one-colour PNGs for what the workflow saves.

Follows runpod-workers/worker-comfyui: `handler.py` (`validate_input`: `workflow` required,
`images` a list of `{"name", "image"}`; `upload_images` decodes base64 after a data URI's
comma; ComfyUI refuses a workflow without an output node; the 5.x output `{"images":
[{"filename", "type": "base64", "data"}]}` or, with a bucket, `"type": "s3_url"`; an error
`{"error", "details"}`), README (before 5.0.0: `{"status": "success", "message"}`).
"""

from __future__ import annotations

import base64
import binascii

from emulator.media import tiny_png

NAME = "worker-comfyui"
VERSIONS = ("5.8", "4.1")
AGGREGATE = False
BUCKET = False  # deployed without a bucket by default: files come back inline
OUTPUT_NODES = {"SaveImage", "PreviewImage"}


def _batch(workflow: dict) -> int:
    sizes = [n.get("inputs", {}).get("batch_size") for n in workflow.values() if isinstance(n, dict)]
    return next((int(s) for s in sizes if isinstance(s, int) and s > 0), 1)


def make_handler(env):
    """`handler`."""

    def handler(job):
        job_input = job["input"]
        if job_input is None:
            return {"error": "Please provide input"}
        workflow = job_input.get("workflow")
        if workflow is None:
            return {"error": "Missing 'workflow' parameter"}
        images = job_input.get("images")
        if images is not None:
            if not isinstance(images, list) or not all("name" in i and "image" in i for i in images):
                return {"error": "'images' must be a list of objects with 'name' and 'image' keys"}
            for image in images:
                data = image["image"].split(",", 1)[1] if "," in image["image"] else image["image"]
                try:
                    base64.b64decode(data, validate=True)
                except binascii.Error as error:
                    return {
                        "error": "Failed to upload one or more input images",
                        "details": [f"Error decoding base64 for {image['name']}: {error}"],
                    }
        nodes = [n for n in workflow.values() if isinstance(n, dict)] if isinstance(workflow, dict) else []
        if not any(n.get("class_type") in OUTPUT_NODES for n in nodes):
            return {"error": "Workflow validation failed:\n• Prompt has no outputs"}
        prompt = next((str(n.get("inputs", {}).get("text")) for n in nodes if n.get("class_type") == "CLIPTextEncode"), "")
        pictures = [tiny_png(f"{prompt}-{i}") for i in range(_batch(workflow))]
        if env.version.startswith("4."):
            first = env.upload(pictures[0], f"{job['id']}.png") if env.upload else base64.b64encode(pictures[0]).decode()
            return {"status": "success", "message": first}
        out = []
        for i, picture in enumerate(pictures):
            name = f"ComfyUI_{i + 1:05d}_.png"
            if env.upload:
                out.append({"filename": name, "type": "s3_url", "data": env.upload(picture, f"{job['id']}/{name}")})
            else:
                out.append({"filename": name, "type": "base64", "data": base64.b64encode(picture).decode()})
        return {"images": out}

    return handler
