"""The surface registry: every inference surface podrelay exposes, in one table.

A surface names its enqueue route, its request schema, its models, the RunPod endpoint
setting (`RUNPOD_ENDPOINT_<NAME>`, a per-model `RUNPOD_ENDPOINT_<NAME>__<MODEL>` wins)
and the pair of functions that map a request to a worker input and an output to a
result. Adding a surface is one entry here plus its schema and mapping in its family's
module (chat, images, audio, video, embeddings).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

from marshmallow import Schema

from integration.config import Settings
from integration.errors import ApiError
from integration.surfaces import audio, chat, embeddings, images, video
from integration.surfaces.fields import MediaUrl
from integration.surfaces.outputs import media_result


@dataclass(frozen=True)
class Surface:
    """One inference surface: a route, a schema, models, and the worker mapping."""

    name: str  # the seed gateway's surface name, also the endpoint setting's suffix
    route: str  # under /v1
    object: str  # the enqueue answer's `object`
    schema: Schema
    models: tuple[str, ...]  # the first is the default
    to_input: Callable[[dict, str], dict]
    to_result: Callable[..., dict]
    unit: str  # what a request is priced by
    unit_price: float  # USD per unit, unless PRICE_TABLE says otherwise
    units: Callable[[dict], float]  # how many units a validated request is, estimated
    action: tuple[str, str] = ("", "")  # its n8n action: (resource, operation)
    returns_file: bool = False  # results are files (images, audio, video): n8n binary data
    any_model: bool = False  # accept model slugs beyond `models` (vLLM serves what it is given)
    worker: str = "custom"  # the RunPod worker assumed behind its endpoint (RUNPOD_WORKER_<NAME> overrides)
    shape: tuple[str, ...] = ()  # request fields that say how the result is shaped (kept on the job)

    @cached_property
    def file_params(self) -> tuple[str, ...]:
        """The request fields that may carry an uploaded file (a data URI)."""
        return tuple(name for name, f in self.schema.fields.items() if isinstance(f, MediaUrl) and f.data)

    @property
    def default_model(self) -> str:
        """The model a request without `model` gets."""
        return self.models[0]

    def model_for(self, request: dict, settings: Settings | None = None) -> str:
        """The model a validated request asks for (or the default; an alias such as OpenAI's
        `gpt-4o-mini` named by MODEL_ALIASES or podrelay's defaults), or a 400 routing error."""
        model = request.get("model") or self.default_model
        model = aliases(settings, self.name).get(model, model)
        if model not in self.models and not self.any_model:
            raise ApiError(
                400,
                "routing_error",
                f"Model '{model}' not found for surface {self.name}; available: {', '.join(self.models)}",
                param="model",
            )
        return model

    def resolve(self, request: dict, settings: Settings) -> tuple[str, str]:
        """The (model, endpoint id) for a validated request, or a 400 routing error."""
        model = self.model_for(request, settings)
        endpoint_id = settings.endpoint_for(self.name, model)
        if not endpoint_id:
            variable = f"RUNPOD_ENDPOINT_{self.name.upper()}"
            message = f"No RunPod endpoint configured for surface {self.name}: set {variable} (or {variable}__<MODEL>)"
            raise ApiError(400, "missing_endpoint_id", message)
        return model, endpoint_id


# OpenAI's model names, so code written for OpenAI works by changing base_url only: each
# means the surface's default model unless MODEL_ALIASES says otherwise.
OPENAI_NAMES = {
    "chat": ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-3.5-turbo", "gpt-5", "gpt-5-mini"),
    "embeddings": ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"),
    "transcribe": ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"),
    "images": ("dall-e-2", "dall-e-3", "gpt-image-1"),
    "image_edit": ("dall-e-2", "gpt-image-1"),
    "speech": ("tts-1", "tts-1-hd", "gpt-4o-mini-tts"),
}


def aliases(settings: Settings | None, surface: str) -> Mapping[str, str]:
    """Model names that stand for one of the surface's models: OpenAI's, then MODEL_ALIASES'
    (`{"chat": {"gpt-4o": "Llama3_8B_Instruct"}}`), which win. Built once per settings and
    surface (every accepted job asks): settings do not change once read."""
    cached = _ALIASES.get((id(settings), surface))
    if cached is not None and cached[0] is settings:  # the settings object is kept: its id is not reused
        return cached[1]
    found = {name: SURFACES[surface].default_model for name in OPENAI_NAMES.get(surface, ())}
    if settings is not None and settings.model_aliases:
        found.update(settings.model_aliases.get(surface, {}))
    if len(_ALIASES) >= 1_000:  # each test builds its own settings: stay bounded
        _ALIASES.clear()
    shown = MappingProxyType(found)
    _ALIASES[(id(settings), surface)] = (settings, shown)
    return shown


_ALIASES: dict[tuple[int, str], tuple[Settings | None, Mapping[str, str]]] = {}


def _chars(value) -> int:
    return len(value) if isinstance(value, str) else len(json.dumps(value))


def _megapixels(request: dict) -> float:
    width, height = (int(x) for x in request.get("size", "1024x1024").split("x"))
    return width * height / 1_048_576


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        Surface(
            name="chat",
            route="/chat/completions",
            object="chat.completion.enqueue",
            schema=chat.ChatSchema(),
            models=("Llama3_8B_Instruct",),
            to_input=chat.chat_input,
            to_result=chat.chat_result,
            unit="1k_tokens",
            unit_price=0.0002,
            units=lambda r: (_chars(r["messages"]) / 4 + chat.output_tokens(r)) / 1000,
            action=("Chat", "create"),
            any_model=True,
            worker="worker-vllm",
        ),
        Surface(
            name="images",
            route="/images/generations",
            object="image.generation.enqueue",
            schema=images.ImageSchema(),
            models=("Flux1schnell", "Ben2", "Flux_2_Klein_4B_BF16", "Ltx2_3_22B_Dist_INT8", "RealESRGAN_x4", "ZImageTurbo_INT8"),
            to_input=images.image_input,
            to_result=images.image_result,
            unit="megapixel",
            unit_price=0.003,
            units=lambda r: r.get("n", 1) * _megapixels(r),
            action=("Image", "generate"),
            returns_file=True,
            worker="worker-sdxl",
        ),
        Surface(
            name="transcribe",
            route="/audio/transcriptions",
            object="audio.transcription.enqueue",
            schema=audio.TranscriptionSchema(),
            models=("WhisperLargeV3",),
            to_input=audio.transcription_input,
            to_result=audio.transcription_result,
            unit="audio_minute",
            unit_price=0.006,
            units=lambda r: 1.0,  # the length is known only once fetched: one minute is assumed,
            action=("Audio", "transcribe"),
            worker="worker-faster_whisper",
        ),
        Surface(
            name="embeddings",
            route="/embeddings",
            object="embedding.enqueue",
            schema=embeddings.EmbeddingSchema(),
            models=("BGE_Large", "Bge_M3_INT8"),
            to_input=embeddings.embedding_input,
            to_result=embeddings.embedding_result,
            unit="1k_tokens",
            unit_price=0.00002,
            units=lambda r: _chars(r["input"]) / 4 / 1000,
            action=("Embedding", "create"),
            worker="worker-infinity-embedding",
            shape=("encoding_format",),
        ),
        Surface(
            name="speech",
            route="/audio/speech",
            object="audio.speech.enqueue",
            schema=audio.SpeechSchema(),
            models=("Kokoro_82M", "Chatterbox_TTS"),
            to_input=audio.speech_input,
            to_result=media_result,
            unit="1k_characters",
            unit_price=0.015,
            units=lambda r: len(r["input"]) / 1000,
            action=("Audio", "speech"),
            returns_file=True,
            worker="worker-bark",
        ),
        Surface(
            name="video",
            route="/videos/generations",
            object="video.generation.enqueue",
            schema=video.VideoSchema(),
            models=("Ltx2_3_22B_Dist_INT8", "Wan2_2_I2V_14B"),
            to_input=video.video_input,
            to_result=media_result,
            unit="video_second",
            unit_price=0.02,
            units=lambda r: r.get("duration", 5),
            action=("Video", "generate"),
            returns_file=True,
            worker="worker-mochi",
        ),
        Surface(
            name="audio_video",
            route="/videos/audio-to-video",
            object="video.audio_to_video.enqueue",
            schema=video.AudioVideoSchema(),
            models=("InfiniteTalk_14B",),
            to_input=video.audio_video_input,
            to_result=media_result,
            unit="video_second",
            unit_price=0.03,
            units=lambda r: 10.0,  # as long as the audio: ten seconds are assumed,
            action=("Video", "fromAudio"),
            returns_file=True,
        ),
        Surface(
            name="music",
            route="/audio/music",
            object="audio.music.enqueue",
            schema=audio.MusicSchema(),
            models=("AceStep_3_5B",),
            to_input=audio.music_input,
            to_result=media_result,
            unit="audio_second",
            unit_price=0.0005,
            units=lambda r: r.get("duration", 30),
            action=("Music", "generate"),
            returns_file=True,
        ),
        Surface(
            name="image_edit",
            route="/images/edits",
            object="image.edit.enqueue",
            schema=images.ImageEditSchema(),
            models=("Flux_Kontext_Dev", "Flux_2_Klein_4B_BF16"),
            to_input=images.image_edit_input,
            to_result=media_result,
            unit="megapixel",
            unit_price=0.004,
            units=lambda r: r.get("n", 1) * _megapixels(r),
            action=("Image", "edit"),
            returns_file=True,
            worker="worker-sdxl",
        ),
        Surface(
            name="upscale",
            route="/images/upscale",
            object="image.upscale.enqueue",
            schema=images.UpscaleSchema(),
            models=("RealESRGAN_x4",),
            to_input=images.upscale_input,
            to_result=media_result,
            unit="image",
            unit_price=0.002,
            units=lambda r: 1.0,
            action=("Image", "upscale"),
            returns_file=True,
            worker="worker-esrgan",
        ),
        Surface(
            name="background_removal",
            route="/images/background-removal",
            object="image.background_removal.enqueue",
            schema=images.BackgroundRemovalSchema(),
            models=("Ben2",),
            to_input=images.background_removal_input,
            to_result=media_result,
            unit="image",
            unit_price=0.001,
            units=lambda r: 1.0,
            action=("Image", "removeBackground"),
            returns_file=True,
        ),
    )
}


def get(name: str) -> Surface:
    """The surface called `name` (KeyError when there is none)."""
    return SURFACES[name]
