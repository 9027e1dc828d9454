"""worker-infinity-embedding: embeddings.

Follows runpod-workers/worker-infinity-embedding: `src/handler.py` (the standard input
`{"model", "input"}`; other keys are not read), `src/utils.py` (the output
`{"object": "list", "data": [{"object", "embedding", "index"}], "model", "usage"}`, and
`create_error_response`: an error object `{"object": "error", "message", "type", "code"}`
returned as the output of a COMPLETED job), `src/embedding_service.py` (the model must be
one of the worker's MODEL_NAMES).
"""

from __future__ import annotations

from integration.adapters.base import unsupported
from integration.config import Settings
from integration.surfaces.embeddings import embedding_result
from integration.surfaces.outputs import ResultContext

NAME = "worker-infinity-embedding"
SURFACES = ("embeddings",)
MODELS = {"BGE_Large": "BAAI/bge-large-en-v1.5", "Bge_M3_INT8": "BAAI/bge-m3"}


def to_input(surface: str, request: dict, model: str, settings: Settings) -> dict:
    """The model's Hugging Face id and the strings (the worker takes no token arrays, no `dimensions`)."""
    texts = request["input"]
    if isinstance(texts, list) and not all(isinstance(t, str) for t in texts):
        raise unsupported("input", f"{NAME} embeds strings, not token arrays")
    if "dimensions" in request:
        raise unsupported("dimensions", f"{NAME} answers the model's own dimensions; 'dimensions' cannot be honoured")
    return {"model": MODELS.get(model, model), "input": texts}


def to_result(surface: str, output, ctx: ResultContext) -> dict:
    """OpenAI's list of embeddings (base64 when the request asked for it)."""
    return embedding_result(output, ctx)
