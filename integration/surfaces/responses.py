"""OpenAI's Responses API as a chat job: the request as chat fields, the chat result as a `response`.

Follows the `openai` SDK's own types (openai-python `types/responses/response_create_params.py`,
`response.py`, `response_output_message.py`, `response_function_tool_call.py`,
`response_usage.py`): `input` (a string, or items: messages with `input_text` /
`input_image` parts, `function_call` and `function_call_output`), `instructions`,
`max_output_tokens`, `temperature`, `top_p`, function `tools`, `tool_choice`,
`text.format` and `metadata`. A response is the job seen through these shapes: its id is
`resp_<job id>`, so `GET /openai/v1/responses/{id}` is the job's state. What podrelay
cannot do (`previous_response_id`, `conversation`, built-in tools) is a 400 naming the field.
"""

from __future__ import annotations

import json

from marshmallow import INCLUDE, Schema, fields, validate

from integration.errors import ApiError
from integration.surfaces.fields import MAX_ITEMS, MAX_STRING

PREFIX = "resp_"
UNSUPPORTED = {
    "previous_response_id": "podrelay keeps no conversation state: send the whole conversation in 'input'",
    "conversation": "podrelay keeps no conversation state: send the whole conversation in 'input'",
    "prompt": "stored prompts are OpenAI's own: send 'input' and 'instructions'",
}
_STATUS = {"queued": "queued", "submitted": "queued", "running": "in_progress", "completed": "completed"}
_STATUS.update(failed="failed", cancelled="cancelled", timed_out="failed")


class ResponsesSchema(Schema):
    """`POST /openai/v1/responses`."""

    class Meta:
        unknown = INCLUDE

    model = fields.String(validate=validate.Length(min=1, max=200))
    input = fields.Raw(required=True)
    instructions = fields.String(validate=validate.Length(max=MAX_STRING), allow_none=True)
    max_output_tokens = fields.Integer(strict=True, validate=validate.Range(min=1, max=8192), allow_none=True)
    temperature = fields.Float(validate=validate.Range(min=0, max=2), allow_nan=False, allow_none=True)
    top_p = fields.Float(validate=validate.Range(min=0, max=1), allow_nan=False, allow_none=True)
    tools = fields.List(fields.Dict(), validate=validate.Length(max=128))
    tool_choice = fields.Raw()
    text = fields.Dict()
    metadata = fields.Dict(
        keys=fields.String(validate=validate.Length(max=64)), values=fields.String(validate=validate.Length(max=512))
    )
    stream = fields.Boolean()
    background = fields.Boolean()
    store = fields.Boolean()
    parallel_tool_calls = fields.Boolean()
    user = fields.String(validate=validate.Length(max=256))


def _refuse(param: str, message: str) -> ApiError:
    return ApiError(400, "validation_error", f"Invalid value for '{param}': {message}", param=param)


def _parts(content, param: str) -> str | list:
    """A message's content as chat content: a string, or `text` / `image_url` parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or len(content) > MAX_ITEMS:
        raise _refuse(param, "must be a string or a list of content parts.")
    parts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"], "detail": part.get("detail", "auto")}})
        else:
            raise _refuse(f"{param}[{index}]", "podrelay takes input_text and input_image (by image_url) parts.")
    return parts


def _messages(request: dict) -> list[dict]:
    """`instructions` and `input` as chat messages."""
    messages = [{"role": "system", "content": request["instructions"]}] if request.get("instructions") else []
    given = request["input"]
    if isinstance(given, str):
        return [*messages, {"role": "user", "content": given}]
    if not isinstance(given, list) or not given or len(given) > MAX_ITEMS:
        raise _refuse("input", f"must be a string or a list of 1 to {MAX_ITEMS} items.")
    for index, item in enumerate(given):
        param = f"input[{index}]"
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind == "message" and item.get("role") in ("user", "assistant", "system", "developer"):
            messages.append({"role": item["role"], "content": _parts(item.get("content"), f"{param}.content")})
        elif kind == "function_call" and isinstance(item.get("name"), str):
            call = {"id": item.get("call_id") or item.get("id"), "type": "function"}
            call["function"] = {"name": item["name"], "arguments": item.get("arguments") or "{}"}
            if messages and messages[-1]["role"] == "assistant" and messages[-1].get("tool_calls"):
                messages[-1]["tool_calls"].append(call)  # parallel calls: one assistant turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output" and isinstance(item.get("call_id"), str):
            output = item.get("output")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item["call_id"],
                    "content": output if isinstance(output, str) else json.dumps(output),
                }
            )
        else:
            raise _refuse(
                param,
                "podrelay takes messages (user, assistant, system, developer), function_call and function_call_output items.",
            )
    return messages


def _tools(tools: list[dict]) -> list[dict]:
    out = []
    for index, tool in enumerate(tools):
        if tool.get("type") != "function" or not isinstance(tool.get("name"), str):
            raise _refuse(f"tools[{index}]", "podrelay runs function tools only; OpenAI's built-in tools are not available.")
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice):
    if choice in ("none", "auto", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _refuse("tool_choice", "must be 'none', 'auto', 'required' or {\"type\": \"function\", \"name\": ...}.")


def _response_format(text: dict):
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is None or fmt.get("type") == "text":
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise _refuse("text.format", "must be text, json_object, or json_schema with a schema.")


def chat_request(request: dict) -> dict:
    """The chat request a validated Responses request is (a 400 naming what cannot be)."""
    for name, why in UNSUPPORTED.items():
        if request.get(name) is not None:
            raise _refuse(name, why)
    chat: dict = {"messages": _messages(request)}
    for ours, theirs in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "top_p")):
        if request.get(ours) is not None:
            chat[theirs] = request[ours]
    if request.get("tools"):
        chat["tools"] = _tools(request["tools"])
    if request.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(request["tool_choice"])
    response_format = _response_format(request.get("text") or {})
    if response_format:
        chat["response_format"] = response_format
    for name in ("model", "user", "webhook_url"):
        if name in request:
            chat[name] = request[name]
    if request.get("stream"):
        chat["stream"] = True
    return chat


def echo(request: dict) -> dict:
    """What a response repeats of its request (kept on the job as its `shape`)."""
    kept = {
        k: request[k]
        for k in ("instructions", "max_output_tokens", "temperature", "top_p", "metadata")
        if request.get(k) is not None
    }
    kept["tools"] = request.get("tools") or []
    kept["tool_choice"] = request.get("tool_choice", "auto")
    kept["text"] = request.get("text") or {"format": {"type": "text"}}
    kept["background"] = bool(request.get("background"))
    return {"responses": kept}


def _output(job_id: str, completion: dict) -> list[dict]:
    message = ((completion.get("choices") or [{}])[0] or {}).get("message") or {}
    output = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append({
            "type": "function_call", "id": f"fc_{call.get('id', '')}", "call_id": call.get("id", ""),
            "name": function.get("name", ""), "arguments": function.get("arguments", "{}"), "status": "completed",
        })  # fmt: skip
    if message.get("content") or not output:
        text = {"type": "output_text", "text": message.get("content") or "", "annotations": [], "logprobs": []}
        output.insert(
            0, {"type": "message", "id": f"msg_{job_id}", "status": "completed", "role": "assistant", "content": [text]}
        )
    return output


def _usage(completion: dict) -> dict:
    usage = completion.get("usage") or {}
    prompt, generated = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {
        "input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": generated, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + generated,
    }  # fmt: skip


def response_object(job: dict, shape: dict) -> dict:
    """A job (as `GET /v1/jobs/{id}` shows it) as OpenAI's `response` object."""
    asked = (shape or {}).get("responses") or {}
    status = _STATUS.get(job["status"], "failed")
    completion = job.get("result") or {}
    finish = ((completion.get("choices") or [{}])[0] or {}).get("finish_reason")
    incomplete = status == "completed" and finish == "length"
    body = {
        "id": PREFIX + job["id"], "object": "response", "created_at": job["created"],
        "status": "incomplete" if incomplete else status, "model": completion.get("model") or job["model"],
        "output": _output(job["id"], completion) if status == "completed" else [],
        "usage": _usage(completion) if status == "completed" else None,
        "error": None, "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "parallel_tool_calls": True, "tools": asked.get("tools", []), "tool_choice": asked.get("tool_choice", "auto"),
        "text": asked.get("text", {"format": {"type": "text"}}), "metadata": asked.get("metadata", {}),
        "background": asked.get("background", False), "completed_at": job.get("finished") if status == "completed" else None,
    }  # fmt: skip
    for name in ("instructions", "max_output_tokens", "temperature", "top_p"):
        body[name] = asked.get(name)
    if job.get("error") and status != "completed":
        body["error"] = {"code": "server_error", "message": job["error"].get("message", "")}
    return body


def job_id_of(response_id: str) -> str:
    """The job behind a response id (`resp_<job id>`); '' when it is not one."""
    return response_id[len(PREFIX) :] if response_id.startswith(PREFIX) else ""
