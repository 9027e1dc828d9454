"""The surface registry: every inference surface podrelay exposes, in one table.

A surface names its enqueue route, its request schema, its models, the RunPod endpoint
setting (`RUNPOD_ENDPOINT_<NAME>`, a per-model `RUNPOD_ENDPOINT_<NAME>__<MODEL>` wins)
and the pair of functions that map a request to a worker input and an output to a
result. Adding a surface is one entry here plus its schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from marshmallow import Schema

from integration import schemas, transforms
from integration.config import Settings
from integration.errors import ApiError


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
    any_model: bool = False  # accept model slugs beyond `models` (vLLM serves what it is given)

    @property
    def default_model(self) -> str:
        return self.models[0]

    def resolve(self, request: dict, settings: Settings) -> tuple[str, str]:
        """The (model, endpoint id) for a validated request, or a 400 routing error."""
        model = request.get("model") or self.default_model
        if model not in self.models and not self.any_model:
            raise ApiError(
                400,
                "routing_error",
                f"Model '{model}' not found for surface {self.name}; available: {', '.join(self.models)}",
                param="model",
            )
        endpoint_id = settings.endpoint_for(self.name, model)
        if not endpoint_id:
            raise ApiError(400, "missing_endpoint_id", f"No RunPod endpoint configured for surface {self.name}")
        return model, endpoint_id


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        Surface(
            name="chat",
            route="/chat/completions",
            object="chat.completion.enqueue",
            schema=schemas.ChatSchema(),
            models=("Llama3_8B_Instruct",),
            to_input=transforms.chat_input,
            to_result=transforms.chat_result,
            any_model=True,
        ),
        Surface(
            name="images",
            route="/images/generations",
            object="image.generation.enqueue",
            schema=schemas.ImageSchema(),
            models=("Flux1schnell", "Ben2", "Flux_2_Klein_4B_BF16", "Ltx2_3_22B_Dist_INT8", "RealESRGAN_x4", "ZImageTurbo_INT8"),
            to_input=transforms.image_input,
            to_result=transforms.image_result,
        ),
        Surface(
            name="transcribe",
            route="/audio/transcriptions",
            object="audio.transcription.enqueue",
            schema=schemas.TranscriptionSchema(),
            models=("WhisperLargeV3",),
            to_input=transforms.transcription_input,
            to_result=transforms.transcription_result,
        ),
        Surface(
            name="embeddings",
            route="/embeddings",
            object="embedding.enqueue",
            schema=schemas.EmbeddingSchema(),
            models=("BGE_Large", "Bge_M3_INT8"),
            to_input=transforms.embedding_input,
            to_result=transforms.embedding_result,
        ),
    )
}


def get(name: str) -> Surface:
    """The surface called `name` (KeyError when there is none)."""
    return SURFACES[name]
