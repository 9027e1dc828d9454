"""Video: text or image to video, and audio to video; results by the media normaliser."""

from __future__ import annotations

from marshmallow import fields, validate

from integration.surfaces.fields import MAX_STRING, MediaUrl, RequestSchema, extras, set_size, size_field


class VideoSchema(RequestSchema):
    """`POST /v1/videos/generations` (with `image`: image to video)."""

    prompt = fields.String(required=True, validate=validate.Length(min=1, max=MAX_STRING))
    image = MediaUrl()  # given: image-to-video
    negative_prompt = fields.String(validate=validate.Length(min=1, max=MAX_STRING))
    duration = fields.Float(validate=validate.Range(min=1, max=20), allow_nan=False)
    fps = fields.Integer(strict=True, validate=validate.Range(min=8, max=60))
    size = size_field()


class AudioVideoSchema(RequestSchema):
    """`POST /v1/videos/audio-to-video`."""

    audioUrl = MediaUrl(required=True)  # noqa: N815 (the seed's name)
    image = MediaUrl()
    prompt = fields.String(validate=validate.Length(min=1, max=MAX_STRING))
    fps = fields.Integer(strict=True, validate=validate.Range(min=8, max=60))


def video_input(request: dict, model: str) -> dict:
    """A video worker's input: prompt, frames (duration × fps), fps, size, image."""
    fps = request.get("fps", 24)
    job_input = {"prompt": request["prompt"], "num_frames": int(request.get("duration", 5) * fps), "fps": fps, "model": model}
    for key in ("image", "negative_prompt"):
        if key in request:
            job_input[key] = request[key]
    set_size(request, job_input)
    job_input.update(extras(request, {"prompt", "image", "negative_prompt", "duration", "fps", "size"}))
    return job_input


def audio_video_input(request: dict, model: str) -> dict:
    """An audio-to-video worker's input: the audio, fps, image, prompt."""
    fps = request.get("fps", 25)
    job_input = {"audio": request["audioUrl"], "num_frames": 0, "fps": fps, "model": model}  # 0: as long as the audio
    for key in ("image", "prompt"):
        if key in request:
            job_input[key] = request[key]
    job_input.update(extras(request, {"audioUrl", "image", "prompt", "fps"}))
    return job_input
