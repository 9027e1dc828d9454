"""worker-faster_whisper, emulated, with a stand-in transcript.

Follows runpod-workers/worker-faster_whisper: `src/rp_schema.py` INPUT_VALIDATIONS (checked
with rp_validator), `src/rp_handler.py` (`{"error": [...]}` for a refused input, `audio` or
`audio_base64` but not both, the URL downloaded), `src/predict.py` (AVAILABLE_MODELS, a
ValueError for another model, `format_segments` for plain_text, formatted_text, srt and
vtt, the output's keys).
"""

from __future__ import annotations

import base64

from emulator.validator import validate

NAME = "worker-faster_whisper"
VERSIONS = ("latest",)
AGGREGATE = False
BUCKET = False  # deployed without a bucket by default: files come back inline
AVAILABLE_MODELS = {"tiny", "base", "small", "medium", "large-v1", "large-v2", "large-v3", "turbo"}


def _schema() -> dict:
    def option(kind, default):
        return {"type": kind, "required": False, "default": default}

    return {
        "audio": option(str, None),
        "audio_base64": option(str, None),
        "model": option(str, "base"),
        "transcription": option(str, "plain_text"),
        "translate": option(bool, False),
        "translation": option(str, "plain_text"),
        "language": option(str, None),
        "temperature": option(float, 0),
        "best_of": option(int, 5),
        "beam_size": option(int, 5),
        "patience": option(float, 1.0),
        "length_penalty": option(float, 0),
        "suppress_tokens": option(str, "-1"),
        "initial_prompt": option(str, None),
        "condition_on_previous_text": option(bool, True),
        "temperature_increment_on_fallback": option(float, 0.2),
        "compression_ratio_threshold": option(float, 2.4),
        "logprob_threshold": option(float, -1.0),
        "no_speech_threshold": option(float, 0.6),
        "enable_vad": option(bool, False),
        "word_timestamps": option(bool, False),
    }


def _timestamp(seconds: float, separator: str) -> str:
    hours, rest = divmod(int(seconds * 1000), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def _format(kind: str, segments: list[dict]) -> str:
    if kind == "formatted_text":
        return "\n".join(s["text"].lstrip() for s in segments)
    if kind == "srt":
        return "".join(
            f"{i}\n{_timestamp(s['start'], ',')} --> {_timestamp(s['end'], ',')}\n{s['text'].strip()}\n\n"
            for i, s in enumerate(segments, start=1)
        )
    if kind == "vtt":
        return "".join(
            f"{_timestamp(s['start'], '.')} --> {_timestamp(s['end'], '.')}\n{s['text'].strip()}\n\n" for s in segments
        )
    return " ".join(s["text"].lstrip() for s in segments)


def make_handler(env):
    """`run_whisper_job`."""

    def handler(job):
        checked = validate(job["input"], _schema())
        if "errors" in checked:
            return {"error": checked["errors"]}
        job_input = checked["validated_input"]
        if not job_input.get("audio") and not job_input.get("audio_base64"):
            return {"error": "Must provide either audio or audio_base64"}
        if job_input.get("audio") and job_input.get("audio_base64"):
            return {"error": "Must provide either audio or audio_base64, not both"}
        if job_input.get("audio"):
            audio = env.fetch(job_input["audio"]) if env.fetch else b""
            source = job_input["audio"]
        else:
            audio = base64.b64decode(job_input["audio_base64"])
            source = f"{len(audio)} uploaded bytes"
        if job_input["model"] not in AVAILABLE_MODELS:
            raise ValueError(f"Invalid model name: {job_input['model']}. Available models are: {AVAILABLE_MODELS}")
        text = f" Transcript of {source}"
        segments = [
            {"id": 1, "seek": 0, "start": 0.0, "end": 2.5, "text": text, "tokens": [50364, 1012], "temperature": 0.0,
             "avg_logprob": -0.2, "compression_ratio": 1.1, "no_speech_prob": 0.01},
        ]  # fmt: skip
        results = {
            "segments": segments,
            "detected_language": job_input["language"] or "en",
            "transcription": _format(job_input["transcription"], segments),
            "translation": _format(job_input["translation"], segments) if job_input["translate"] else None,
            "device": "cpu",
            "model": job_input["model"],
        }
        if job_input["word_timestamps"]:
            results["word_timestamps"] = [
                {"word": " " + word, "start": 0.5 * i, "end": 0.5 * i + 0.4} for i, word in enumerate(text.split())
            ]
        return results

    return handler
