"""worker-vllm, emulated in both versions in use, with an echo for a model.

Follows runpod-workers/worker-vllm:
- 2.24 and later, `src/handler.py`: `_normalize_job_input` (OpenAI route, generic route,
  legacy shorthand turned into a chat body), the proxy's answers: the server's JSON once,
  or with `stream: true` the raw SSE text as `iter_any()` hands it out (any byte
  boundary); errors `{"error": {"message", "type": "worker_error", "code": None}}`.
- 2.23, `src/engine.py` and `src/utils.py`: the OpenAI route answers `model_dump()` of
  vLLM's response, or, streamed with `RAW_OPENAI_OUTPUT=1` (the default), batches of SSE
  events joined into one string (batch sizes from BatchSize: 1, 3, 9, ... up to 50); the
  legacy input answers `{"choices": [{"tokens": [...]}], "usage": {"input", "output"}}`
  batches; vLLM's errors are `{"error": {"message", "type", "param", "code"}}`.
Both start with `return_aggregate_stream: True` (`src/main.py`, 2.23 `src/handler.py`).

The model stand-in follows vLLM's OpenAI server semantics: the served model's name (a
request naming another is a 404 error), `max_tokens` (words; `finish_reason: length`),
`stop`, `n`, tools (a call when `tool_choice` requires one or the last user message names the
tool, unless a tool's result came last: then the answer echoes it; `finish_reason:
tool_calls`), `response_format` json_object, and usage counts.
"""

from __future__ import annotations

import json
import time
import uuid

NAME = "worker-vllm"
VERSIONS = ("2.25", "2.24", "2.23")
AGGREGATE = True
BUCKET = False  # deployed without a bucket by default: files come back inline
SERVED_MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
CHAT_ROUTE = "/v1/chat/completions"


def _legacy_version(version: str) -> bool:
    return tuple(int(p) for p in version.split(".")[:2]) < (2, 24)


def make_handler(env):
    """The handler of the worker's version (a generator, as both versions' are)."""
    legacy = _legacy_version(env.version)

    def handler(job):
        job_input = job.get("input") or {}
        if legacy:
            yield from _handler_2_23(job_input)
        else:
            yield from _handler_2_24(job_input)

    return handler


# -- 2.24 and later: the proxy -----------------------------------------------------------


def _error_2_24(message: str) -> dict:
    return {"error": {"message": message, "type": "worker_error", "code": None}}


def _handler_2_24(job_input: dict):
    if job_input.get("openai_input"):
        route, body = job_input.get("openai_route") or CHAT_ROUTE, job_input["openai_input"]
    elif job_input.get("route"):
        route, body = job_input["route"], job_input.get("body")
    elif job_input.get("messages") is not None or job_input.get("prompt") is not None:
        body = {**dict(job_input.get("sampling_params") or {}), "stream": bool(job_input.get("stream", False))}
        if job_input.get("messages") is not None:
            route, body["messages"] = CHAT_ROUTE, job_input["messages"]
        else:
            route, body["prompt"] = "/v1/completions", job_input["prompt"]
    else:
        yield _error_2_24("Job input must contain one of: openai_input (+openai_route), route (+body), or prompt/messages.")
        return
    if route != CHAT_ROUTE:
        yield _error_2_24(f'vLLM returned HTTP 404: {{"detail":"Not Found"}} ({route} is not emulated)')
        return
    body = {**body, "model": body.get("model") or SERVED_MODEL}
    problem = _request_error(body)
    if problem:
        yield _error_2_24(f"vLLM returned HTTP {problem['code']}: {json.dumps({'error': problem})}")
        return
    if body.get("stream") is True:
        text = "".join(_sse(event) for event in _chunks(body)) + "data: [DONE]\n\n"
        yield from _split_anywhere(text)
    else:
        yield _completion(body)


def _split_anywhere(text: str):
    """SSE text in the pieces a socket read might give: sizes that cut events and lines apart."""
    sizes, position, n = (7, 61, 23, 113, 5, 89, 41), 0, 0
    while position < len(text):
        size = sizes[n % len(sizes)]
        yield text[position : position + size]
        position, n = position + size, n + 1


# -- 2.23: the engine --------------------------------------------------------------------


def _handler_2_23(job_input: dict):
    route = job_input.get("openai_route")
    if route:
        body = job_input.get("openai_input") or {}
        if route != CHAT_ROUTE:
            yield {"error": {"message": "Invalid route", "type": "BadRequestError", "param": None, "code": 400}}
            return
        body = {**body, "model": body.get("model") or SERVED_MODEL}
        problem = _request_error(body)
        if problem:
            yield {"error": problem}
            return
        if not body.get("stream"):
            yield _completion(body)
            return
        events = [_sse(event) for event in _chunks(body)] + ["data: [DONE]\n\n"]
        batch_size = 1
        while events:
            yield "".join(events[:batch_size])  # RAW_OPENAI_OUTPUT=1: the batch's events, joined
            events, batch_size = events[batch_size:], min(batch_size * 3, 50)
        return
    messages = job_input.get("messages", job_input.get("prompt"))
    if messages is None:
        yield {"error": "Input must be a string or a list of messages"}
        return
    sampling = dict(job_input.get("sampling_params") or {})
    sampling.setdefault("max_tokens", 100)  # JobInput's default
    words = _answer_words(messages if isinstance(messages, list) else [{"role": "user", "content": messages}])
    words, _ = _limited(words, sampling)
    prompt_tokens = _prompt_tokens(messages)
    if not job_input.get("stream"):
        yield {"choices": [{"tokens": [" ".join(words)]}], "usage": {"input": prompt_tokens, "output": len(words)}}
        return
    for count, word in enumerate(words, start=1):
        yield {"choices": [{"tokens": [word if count == 1 else " " + word]}], "usage": {"input": prompt_tokens, "output": count}}


# -- the model stand-in, as vLLM's OpenAI server answers ----------------------------------


def _request_error(body: dict) -> dict | None:
    if body.get("model") != SERVED_MODEL:
        return {
            "message": f"The model `{body.get('model')}` does not exist.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return {"message": "messages: Field required", "type": "BadRequestError", "param": None, "code": 400}
    return None


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _last_user(messages: list) -> str:
    return next((_text_of(m.get("content")) for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), "")


def _answered_tool(messages: list) -> bool:
    """The conversation ends with a tool's result: the model answers with it, it calls no tool."""
    return bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"


def _answer_words(messages: list) -> list[str]:
    if _answered_tool(messages):
        return f"Echo: {_text_of(messages[-1].get('content'))}".split()
    return f"Echo: {_last_user(messages)}".split()


def _prompt_tokens(messages) -> int:
    if isinstance(messages, str):
        return len(messages.split())
    return sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))


def _limited(words: list[str], body: dict) -> tuple[list[str], str]:
    """The words after `stop` and `max_tokens` (one token a word), and the finish reason."""
    text = " ".join(words)
    stops = body.get("stop") or []
    for stop in [stops] if isinstance(stops, str) else stops:
        if stop and stop in text:
            text = text[: text.index(stop)]
    words = text.split()
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    if limit is not None and len(words) > limit:
        return words[:limit], "length"
    return words, "stop"


def _tool_call(body: dict) -> dict | None:
    """The function vLLM's tool parser would call, if any."""
    tools = [t.get("function", {}) for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name")
        tool = next((t for t in tools if t.get("name") == named), None)
    elif choice == "required":
        tool = tools[0]
    elif _answered_tool(body["messages"]):
        return None
    else:
        said = _last_user(body["messages"]).lower()
        tool = next((t for t in tools if str(t.get("name", "")).lower() in said), None)
    if tool is None:
        return None
    arguments = json.dumps({"query": _last_user(body["messages"])})
    return {
        "id": f"chatcmpl-tool-{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": tool.get("name"), "arguments": arguments},
    }


def _choice_content(body: dict) -> tuple[str, str, dict | None]:
    call = _tool_call(body)
    if call is not None:
        return "", "tool_calls", call
    words, finish = _limited(_answer_words(body["messages"]), body)
    content = " ".join(words)
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        content = json.dumps({"echo": content})
    return content, finish, None


def _completion(body: dict) -> dict:
    """`ChatCompletionResponse.model_dump()`, as vLLM fills it."""
    content, finish, call = _choice_content(body)
    choices = []
    for index in range(int(body.get("n") or 1)):
        message = {"role": "assistant", "content": content or None, "refusal": None, "annotations": None, "audio": None}
        message.update({"function_call": None, "tool_calls": [call] if call else [], "reasoning_content": None})
        choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": finish, "stop_reason": None})
    prompt, completion = _prompt_tokens(body["messages"]), len(content.split()) * len(choices)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": choices,
        "service_tier": None,
        "system_fingerprint": None,
        "usage": {
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
            "completion_tokens": completion,
            "prompt_tokens_details": None,
        },
        "prompt_logprobs": None,
        "kv_transfer_params": None,
    }


def _chunks(body: dict) -> list[dict]:
    """The `chat.completion.chunk`s vLLM streams: the role, each token, the finish, usage if asked."""
    content, finish, call = _choice_content(body)
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
    }
    n = int(body.get("n") or 1)

    def chunk(index: int, delta: dict, finish_reason=None) -> dict:
        return {**base, "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    out = [chunk(i, {"role": "assistant", "content": ""}) for i in range(n)]
    words = content.split(" ") if content else []
    for i in range(n):
        if call:
            out.append(
                chunk(
                    i,
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    },
                )
            )
            out.append(chunk(i, {"tool_calls": [{"index": 0, "function": {"arguments": call["function"]["arguments"]}}]}))
        for position, word in enumerate(words):
            out.append(chunk(i, {"content": word if position == 0 else " " + word}))
        out.append(chunk(i, {"content": ""}, finish))
    if (body.get("stream_options") or {}).get("include_usage"):
        prompt, completion = _prompt_tokens(body["messages"]), len(words) * n
        out.append(
            {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion},
            }
        )
    return out


def _sse(event: dict) -> str:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n"
