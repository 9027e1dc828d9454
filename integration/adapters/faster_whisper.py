"""worker-faster_whisper: transcription.

Follows runpod-workers/worker-faster_whisper: `src/rp_schema.py` (INPUT_VALIDATIONS, checked
by rp_validator, which refuses any other key), `src/rp_handler.py` (`audio` URL or
`audio_base64`, not both), `src/predict.py` (AVAILABLE_MODELS; the output's `segments`,
`detected_language`, `transcription`, `translation`, `device`, `model`, and
`word_timestamps` when asked).
"""

from __future__ import annotations

from integration.adapters.base import Extras, Param, unsupported
from integration.config import Settings
from integration.surfaces.audio import TRANSCRIPTION_FIELDS, transcription_fields, transcription_result
from integration.surfaces.outputs import ResultContext

NAME = "worker-faster_whisper"
SURFACES = ("transcribe",)
AVAILABLE_MODELS = {"tiny", "base", "small", "medium", "large-v1", "large-v2", "large-v3", "turbo"}
PARAMS = {
    "audio": Param(str),
    "audio_base64": Param(str),
    "model": Param(str),
    "transcription": Param(str),
    "translate": Param(bool),
    "translation": Param(str),
    "language": Param(str),
    "temperature": Param(float),
    "best_of": Param(int),
    "beam_size": Param(int),
    "patience": Param(float),
    "length_penalty": Param(float),
    "suppress_tokens": Param(str),
    "initial_prompt": Param(str),
    "condition_on_previous_text": Param(bool),
    "temperature_increment_on_fallback": Param(float),
    "compression_ratio_threshold": Param(float),
    "logprob_threshold": Param(float),
    "no_speech_threshold": Param(float),
    "enable_vad": Param(bool),
    "word_timestamps": Param(bool),
}
EXTRAS = Extras(
    NAME, PARAMS, strict=True, derived=frozenset({"audio", "audio_base64", "model", "transcription", "initial_prompt"})
)


def to_input(surface: str, request: dict, model: str, settings: Settings) -> dict:
    """`audio` (a URL) or `audio_base64` (an upload), the model's name, the text format."""
    job_input = transcription_fields(request, model)
    if job_input["model"] not in AVAILABLE_MODELS:
        raise unsupported("model", f"{NAME} serves {', '.join(sorted(AVAILABLE_MODELS))}, not '{model}'")
    return {**job_input, **EXTRAS.take(request, TRANSCRIPTION_FIELDS)}


def to_result(surface: str, output, ctx: ResultContext) -> dict:
    """`{"text", "segments", "language"}` (and `words` with word timestamps)."""
    result = transcription_result(output, ctx)
    if isinstance(output, dict) and isinstance(output.get("word_timestamps"), list):
        result["words"] = output["word_timestamps"]
    return result
