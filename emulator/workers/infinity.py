"""worker-infinity-embedding, emulated, with hashed vectors for a model.

Follows runpod-workers/worker-infinity-embedding: `src/handler.py`
(`async_generator_handler`: the OpenAI route answers a one-item list, the standard input
`{"model", "input"}` an object, `{"query", "docs"}` a rerank; other keys are not read),
`src/utils.py` (`list_embeddings_to_response`, `to_rerank_response`, and
`create_error_response`: `{"object": "error", "message", "type", "param", "code"}` as the
output), `src/config.py` (MODEL_NAMES: the models it serves; another is an error).
"""

from __future__ import annotations

import hashlib

NAME = "worker-infinity-embedding"
VERSIONS = ("latest",)
AGGREGATE = False
BUCKET = False  # deployed without a bucket by default: files come back inline
MODEL_NAMES = ("BAAI/bge-large-en-v1.5", "BAAI/bge-m3")


def _error(message: str) -> dict:
    return {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": 400}


def _embeddings(texts, model: str) -> dict:
    texts = [texts] if isinstance(texts, str) else texts
    data = []
    for index, text in enumerate(texts):
        digest = hashlib.sha256(str(text).encode()).digest()
        data.append({"object": "embedding", "embedding": [round(b / 255 - 0.5, 4) for b in digest[:8]], "index": index})
    usage = sum(len(str(t).split()) for t in texts)
    return {"model": model, "object": "list", "data": data, "usage": {"prompt_tokens": usage, "total_tokens": usage}}


def make_handler(env):
    """`async_generator_handler` (a coroutine there; its answer is what matters here)."""

    def handler(job):
        job_input = job["input"]
        if job_input.get("openai_route"):
            route, openai_input = job_input.get("openai_route"), job_input.get("openai_input") or {}
            if route != "/v1/embeddings":
                return _error(f"Invalid OpenAI Route: {route}")
            if not openai_input.get("model"):
                return _error("Did not specify model in openai_input")
            if openai_input["model"] not in MODEL_NAMES:
                return _error(f"'{openai_input['model']}'")
            return [_embeddings(openai_input.get("input"), openai_input["model"])]
        if job_input.get("query"):
            docs = job_input.get("docs") or []
            results = [{"relevance_score": round(1 / (1 + i), 4), "index": i} for i, _ in enumerate(docs)]
            return {"model": job_input.get("model"), "results": results, "usage": {"prompt_tokens": 1, "total_tokens": 1}}
        if job_input.get("input"):
            if job_input.get("model") not in MODEL_NAMES:
                return _error(f"'{job_input.get('model')}'")  # the engine array's KeyError, as str(e)
            return _embeddings(job_input["input"], job_input["model"])
        return _error(f"Invalid input: {job}")

    return handler
