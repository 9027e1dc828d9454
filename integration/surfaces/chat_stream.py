"""Streamed chat output: RunPod `/stream` pieces become `chat.completion.chunk`s, and chunks a completion.

The pieces come in every shape worker-vllm has produced (runpod-workers/worker-vllm):
- v2.24 and later (`src/handler.py`, the OpenAI-server proxy): raw Server-Sent Events text
  as vLLM wrote it, split wherever the socket read ended (`resp.content.iter_any()`), so
  an event may start in one piece and end in the next; `data: [DONE]` closes it;
- v2.23 (`src/engine.py`, OpenAI route): several SSE events joined in one string per
  batch (`RAW_OPENAI_OUTPUT=1`, the default), or a list of parsed chunk objects (`=0`);
- v2.23 and older, legacy input: batch objects `{"choices": [{"tokens": [...]}], "usage"}`.
A job's final output, with `return_aggregate_stream`, is the list of those pieces.
"""

from __future__ import annotations

import json

DONE = "[DONE]"


def parse(pieces: list, rest: str = "") -> tuple[list[dict], str]:
    """The chunks in `pieces` (in order), and the SSE text of an event not finished yet."""
    chunks: list[dict] = []
    for piece in pieces:
        if isinstance(piece, str):
            events, rest = _split_events(rest + piece)
            chunks += [chunk for chunk in map(_event_chunk, events) if chunk is not None]
        elif isinstance(piece, list):
            more, rest = parse(piece, rest)
            chunks += more
        elif isinstance(piece, dict):
            chunk = _object_chunk(piece)
            if chunk is not None:
                chunks.append(chunk)
    return chunks, rest


def finish(rest: str) -> list[dict]:
    """The chunk of a last event that ended without its blank line, if any."""
    chunk = _event_chunk(rest) if rest.strip() else None
    return [chunk] if chunk is not None else []


def _split_events(text: str) -> tuple[list[str], str]:
    text = text.replace("\r\n", "\n")
    *events, rest = text.split("\n\n")
    return events, rest


def _event_chunk(event: str) -> dict | None:
    """One SSE event's chunk (its `data:` lines joined), None for `[DONE]`, comments and non-JSON."""
    data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
    if not data or data.strip() == DONE:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return _object_chunk(value) if isinstance(value, dict) else None


def _object_chunk(piece: dict) -> dict | None:
    """A chunk object as it is, or a legacy batch (`tokens`) as a chunk."""
    choices = piece.get("choices")
    if not isinstance(choices, list):
        return None
    if piece.get("object") == "chat.completion.chunk" or any(isinstance(c, dict) and "delta" in c for c in choices):
        return piece
    converted = []
    for index, choice in enumerate(choices):
        if isinstance(choice, dict) and isinstance(choice.get("tokens"), list):
            text = "".join(str(token) for token in choice["tokens"])
            converted.append({"index": choice.get("index", index), "delta": {"content": text}, "finish_reason": None})
    if not converted:
        return None
    chunk: dict = {"object": "chat.completion.chunk", "choices": converted}
    usage = piece.get("usage")
    if isinstance(usage, dict):  # the engine counts {"input", "output"} tokens
        prompt, completion = int(usage.get("input") or 0), int(usage.get("output") or 0)
        chunk["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return chunk


def text(chunk: dict) -> str:
    """The content a chunk adds (every choice's, in order)."""
    return "".join(str(c.get("delta", {}).get("content") or "") for c in chunk.get("choices", []) if isinstance(c, dict))


def assemble(chunks: list[dict], completion_id: str, created: int, model: str) -> dict:
    """The `chat.completion` the chunks add up to: content, tool calls, finish reasons, usage, model."""
    choices: dict[int, dict] = {}
    usage, served = None, None
    for chunk in chunks:
        served = chunk.get("model") or served
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]  # the last one counts the whole completion
        for delta_choice in chunk.get("choices", []):
            if not isinstance(delta_choice, dict):
                continue
            index = int(delta_choice.get("index") or 0)
            choice = choices.setdefault(index, {"index": index, "message": {"role": "assistant", "content": None}})
            delta = delta_choice.get("delta") or {}
            message = choice["message"]
            if delta.get("content"):
                message["content"] = (message["content"] or "") + delta["content"]
            for call in delta.get("tool_calls") or []:
                _merge_tool_call(choice.setdefault("calls", {}), call)
            if delta_choice.get("finish_reason"):
                choice["finish_reason"] = delta_choice["finish_reason"]
    ordered = [choices[i] for i in sorted(choices)] or [{"index": 0, "message": {"role": "assistant", "content": ""}}]
    for choice in ordered:
        choice.setdefault("finish_reason", "stop")
        calls = choice.pop("calls", None)
        if calls:
            choice["message"]["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": served or model,
        "choices": ordered,
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def _merge_tool_call(calls: dict[int, dict], delta: dict) -> None:
    """Tool calls stream in pieces by `index`: the first has id, type and name; arguments accumulate."""
    call = calls.setdefault(
        int(delta.get("index") or 0), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
    )
    call["id"] = delta.get("id") or call["id"]
    call["type"] = delta.get("type") or call["type"]
    function = delta.get("function") or {}
    call["function"]["name"] = function.get("name") or call["function"]["name"]
    call["function"]["arguments"] += function.get("arguments") or ""
