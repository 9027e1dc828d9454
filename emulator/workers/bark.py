"""worker-bark, emulated, with a short tone for speech.

Follows runpod-workers/worker-bark: `src/schemas.py` INPUT_SCHEMA (`text_prompt` required,
`voice_preset` defaulting to `v2/en_speaker_1`, nothing else), `src/handler.py` (`{"error":
errors}` for a refused input; the WAV uploaded by `upload_file_to_bucket`; the output
`{"audio_file_url"}`, a `local_upload/...` path without a bucket).
"""

from __future__ import annotations

from emulator.media import tiny_wav
from emulator.validator import validate

NAME = "worker-bark"
VERSIONS = ("latest",)
AGGREGATE = False
BUCKET = True  # useless without one: the emulated endpoint has a bucket unless told `+nobucket`


def make_handler(env):
    """`generate_bark_audio`."""

    def handler(job):
        schema = {
            "text_prompt": {"type": str, "required": True},
            "voice_preset": {"type": str, "required": False, "default": "v2/en_speaker_1"},
        }
        checked = validate(job["input"], schema)
        if "errors" in checked:
            return {"error": checked["errors"]}
        job_input = checked["validated_input"]
        audio = tiny_wav(f"{job_input['text_prompt']}-{job_input['voice_preset']}")
        name = f"{job['id']}_bark_audio.wav"
        return {"audio_file_url": env.upload(audio, name) if env.upload else f"local_upload/{name}"}

    return handler
