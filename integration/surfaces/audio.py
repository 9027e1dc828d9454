"""Audio: transcription (worker-faster_whisper), text to speech, text to music.

Transcription answers `{"text", "segments", "language"}`; speech and music share the
media normaliser (`outputs.media_result`).
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from integration.surfaces.fields import MAX_STRING, MediaUrl, RequestSchema, extras
from integration.surfaces.outputs import OutputError, ResultContext


class TranscriptionSchema(RequestSchema):
    """`POST /v1/audio/transcriptions`."""

    audioUrl = MediaUrl(required=True)  # noqa: N815 (the API's name; a data URI is an upload)
    language = fields.String(validate=validate.Length(min=2, max=35))
    prompt = fields.String(validate=validate.Length(min=1, max=MAX_STRING))
    response_format = fields.String(validate=validate.OneOf(["json", "text", "srt", "verbose_json", "vtt"]))


class TranscriptionFormSchema(Schema):
    """OpenAI mode's multipart transcription fields (the file itself is checked apart)."""

    model = fields.String(validate=validate.Length(min=1, max=200))
    language = fields.String(validate=validate.Length(min=2, max=35))
    prompt = fields.String(validate=validate.Length(min=1, max=100_000))
    response_format = fields.String(validate=validate.OneOf(["json", "text", "srt", "verbose_json", "vtt"]))
    temperature = fields.Float(validate=validate.Range(min=0, max=1))


class SpeechSchema(RequestSchema):
    """`POST /v1/audio/speech`."""

    input = fields.String(required=True, validate=validate.Length(min=1, max=20_000))
    voice = fields.String(validate=validate.Length(min=1, max=100))
    response_format = fields.String(validate=validate.OneOf(["mp3", "wav", "opus", "flac"]))
    speed = fields.Float(validate=validate.Range(min=0.25, max=4.0), allow_nan=False)


class MusicSchema(RequestSchema):
    """`POST /v1/audio/music`."""

    prompt = fields.String(required=True, validate=validate.Length(min=1, max=MAX_STRING))
    duration = fields.Float(validate=validate.Range(min=1, max=300), allow_nan=False)


_WHISPER_MODELS = {"WhisperLargeV3": "large-v3"}
_WHISPER_FORMATS = {"srt": "srt", "vtt": "vtt"}


TRANSCRIPTION_FIELDS = {"audioUrl", "audio_base64", "language", "prompt", "response_format"}  # what the input is made of


def transcription_fields(request: dict, model: str) -> dict:
    """`audio` (a URL) or `audio_base64` (an upload), `model`, `transcription`, language and
    initial prompt, in worker-faster_whisper's names."""
    job_input = {
        "model": _WHISPER_MODELS.get(model, model),
        "transcription": _WHISPER_FORMATS.get(request.get("response_format", ""), "plain_text"),
    }
    if request.get("audio_base64"):
        job_input["audio_base64"] = request["audio_base64"]
    elif request["audioUrl"].startswith("data:"):  # a small upload, inline (a large one became a URL)
        job_input["audio_base64"] = request["audioUrl"].split(",", 1)[1]
    else:
        job_input["audio"] = request["audioUrl"]
    if "language" in request:
        job_input["language"] = request["language"]
    if "prompt" in request:
        job_input["initial_prompt"] = request["prompt"]
    return job_input


def transcription_input(request: dict, model: str) -> dict:
    """A transcription worker's input: the fields above, and every other field passed through."""
    return {**transcription_fields(request, model), **extras(request, TRANSCRIPTION_FIELDS)}


def transcription_result(output, ctx: ResultContext) -> dict:
    """The worker's transcription as `{"text", "segments", "language"}`."""
    if not isinstance(output, dict):
        raise OutputError("transcription output is not an object")
    segments = output.get("segments") or []
    text = output.get("transcription") or output.get("text")
    if text is None:
        if not segments:
            raise OutputError("transcription output has neither text nor segments")
        text = "".join(str(s.get("text", "")) for s in segments).strip()
    return {"text": text, "segments": segments, "language": output.get("detected_language") or output.get("language")}


def speech_input(request: dict, model: str) -> dict:
    """A text-to-speech worker's input: text, voice, output format, speed."""
    job_input = {
        "text": request["input"],
        "voice": request.get("voice", "default"),
        "output_format": request.get("response_format", "mp3"),
    }
    if "speed" in request:
        job_input["speed"] = request["speed"]
    job_input.update(extras(request, {"input", "voice", "response_format", "speed"}))
    return job_input


def music_input(request: dict, model: str) -> dict:
    """A text-to-music worker's input: prompt and duration."""
    job_input = {"prompt": request["prompt"], "duration": request.get("duration", 30), "model": model}
    job_input.update(extras(request, {"prompt", "duration"}))
    return job_input
