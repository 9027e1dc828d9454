"""worker-bark: text to speech with Bark.

Follows runpod-workers/worker-bark: `src/schemas.py` (INPUT_SCHEMA, checked by
rp_validator: `text_prompt` required, `voice_preset` with the default `v2/en_speaker_1`,
no other key), `src/handler.py` (a WAV file uploaded by `rp_upload.upload_file_to_bucket`;
the output `{"audio_file_url"}`, which holds a local `local_upload/` path when the worker
has no bucket). OpenAI's voice names are mapped to Bark's English speakers, so a client
written for OpenAI works unchanged.
"""

from __future__ import annotations

import re

from integration.adapters.base import Extras, Param, WorkerError, is_url, unsupported
from integration.config import Settings
from integration.surfaces.outputs import OutputError, ResultContext, file_item

NAME = "worker-bark"
SURFACES = ("speech",)
_PRESET = re.compile(r"^v2/[a-z]{2}_speaker_[0-9]$")
OPENAI_VOICES = {
    name: f"v2/en_speaker_{n}"
    for n, name in enumerate(("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer"))
}


PARAMS = {"text_prompt": Param(str), "voice_preset": Param(str)}
EXTRAS = Extras(NAME, PARAMS, strict=True, derived=frozenset(PARAMS))


def to_input(surface: str, request: dict, model: str, settings: Settings) -> dict:
    """`text_prompt` and, unless the default voice is asked for, `voice_preset`."""
    if request.get("response_format", "wav") != "wav":
        raise unsupported("response_format", f"{NAME} makes WAV audio: ask for 'wav'")
    if "speed" in request:
        raise unsupported("speed", f"{NAME} has no speed setting")
    EXTRAS.take(request, {"input", "voice", "response_format"})  # the schema has nothing more to give
    job_input = {"text_prompt": request["input"]}
    voice = request.get("voice", "default")
    if voice != "default":
        if not _PRESET.match(voice) and voice not in OPENAI_VOICES:
            raise unsupported("voice", f"{NAME} speaks Bark presets such as v2/en_speaker_3, or OpenAI's voice names")
        job_input["voice_preset"] = OPENAI_VOICES.get(voice, voice)
    return job_input


def to_result(surface: str, output, ctx: ResultContext) -> dict:
    """The audio file's URL, as a WAV result."""
    url = output.get("audio_file_url") if isinstance(output, dict) else None
    if not isinstance(url, str) or not url:
        raise OutputError("worker-bark's output has no audio_file_url")
    if not is_url(url):
        raise WorkerError(
            f"{NAME} saved the audio on the worker ({url}) instead of uploading it: "
            "set the endpoint's BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY"
        )
    return {"created": ctx.created, "data": [file_item(url)], "format": "wav"}
