"""worker-vllm: chat through its OpenAI route, in both versions in use.

Follows runpod-workers/worker-vllm. Both v2.23 (`src/utils.py` JobInput, `src/engine.py`
OpenAIvLLMEngine) and v2.24 and later (`src/handler.py` `_normalize_job_input`, a proxy to
`vllm serve`) take `{"openai_route": "/v1/chat/completions", "openai_input": {...}}` and
hand the body to vLLM's own OpenAI server code, so every OpenAI chat field the client
sent reaches vLLM, and `finish_reason`, `tool_calls`, `usage` and the served model come
back as vLLM wrote them. Without `model`, v2.24 fills in the served model
(`_default_model`) and vLLM's own check takes a missing model as the default one, so
podrelay's registry names are not sent.

Outputs (`return_aggregate_stream: True` in both `start` calls): not streamed, the list of
what the handler yielded: `[chat.completion]`; streamed, the list of pieces
(`chat_stream.py`). An error is `{"error": {...}}`, which runpod-python turns into a
FAILED job.
"""

from __future__ import annotations

from integration.config import Settings
from integration.surfaces.chat import chat_result
from integration.surfaces.fields import OWN_FIELDS
from integration.surfaces.outputs import ResultContext

NAME = "worker-vllm"
SURFACES = ("chat",)
ROUTE = "/v1/chat/completions"
REGISTRY_MODELS = {"Llama3_8B_Instruct"}  # podrelay's names for "the endpoint's served model"


def to_input(surface: str, request: dict, model: str, settings: Settings) -> dict:
    """`openai_input` is the client's chat request (every field), `model` only when it names a served model."""
    body = {name: value for name, value in request.items() if name not in OWN_FIELDS and name != "model"}
    if model not in REGISTRY_MODELS:  # `model` is resolved: an alias (gpt-4o-mini) is the model it stands for
        body["model"] = model
    return {"openai_route": ROUTE, "openai_input": body}


def to_result(surface: str, output, ctx: ResultContext) -> dict:
    """vLLM's completion as it wrote it, or the completion the streamed pieces add up to."""
    return chat_result(output, ctx)
