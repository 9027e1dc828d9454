"""Chat: the request schema (OpenAI's chat fields), the `custom` worker's input, and any chat
output as a `chat.completion`.

The `custom` input is worker-vllm's legacy shorthand (runpod-workers/worker-vllm
`src/utils.py` JobInput: `messages`, `sampling_params` with vLLM's SamplingParams names,
`stream`); worker-vllm's OpenAI route is `integration/adapters/vllm.py`. Outputs are read
in every shape a chat worker gives: a completion, a list of them, vLLM's legacy batches
(`[{"choices": [{"tokens": [...]}], "usage": {"input", "output"}}]`), or streamed pieces.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from integration.surfaces import chat_stream
from integration.surfaces.fields import MAX_ITEMS, MAX_STRING, RequestSchema, extras
from integration.surfaces.outputs import OutputError, ResultContext


class MessageSchema(Schema):
    """One chat message: a role and its content (a string or content parts)."""

    class Meta:
        unknown = INCLUDE

    role = fields.String(required=True, validate=validate.OneOf(["system", "developer", "user", "assistant", "tool"]))
    content = fields.Raw(allow_none=True, load_default=None)

    @validates_schema
    def _content_shape(self, data, **kwargs):
        content = data.get("content")
        if content is None:
            if data.get("role") != "assistant":
                raise ValidationError("Must be a string or a list of content parts.", "content")
        elif isinstance(content, str):
            if len(content) > MAX_STRING:
                raise ValidationError(f"Longer than {MAX_STRING} characters.", "content")
        elif not (isinstance(content, list) and len(content) <= MAX_ITEMS and all(isinstance(part, dict) for part in content)):
            raise ValidationError("Must be a string or a list of content parts.", "content")


class StopField(fields.Field):
    """`stop`: a string, or up to 4 strings (OpenAI's limit)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and len(value) <= 1000:
            return value
        if isinstance(value, list) and len(value) <= 4 and all(isinstance(s, str) and len(s) <= 1000 for s in value):
            return value
        raise ValidationError("Must be a string or a list of up to 4 strings.")


class ToolChoiceField(fields.Field):
    """`tool_choice`: none, auto, required, or `{"type": "function", "function": {"name"}}`."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value in ("none", "auto", "required") or isinstance(value, dict):
            return value
        raise ValidationError("Must be 'none', 'auto', 'required' or an object naming a function.")


class ChatSchema(RequestSchema):
    """`POST /v1/chat/completions`: OpenAI's chat request (unknown fields pass through to the worker)."""

    messages = fields.List(fields.Nested(MessageSchema), required=True, validate=validate.Length(min=1, max=MAX_ITEMS))
    temperature = fields.Float(validate=validate.Range(min=0, max=2), allow_nan=False)
    max_tokens = fields.Integer(strict=True, validate=validate.Range(min=1, max=8192))
    max_completion_tokens = fields.Integer(strict=True, validate=validate.Range(min=1, max=8192))
    n = fields.Integer(strict=True, validate=validate.Range(min=1, max=8))
    top_p = fields.Float(validate=validate.Range(min=0, max=1), allow_nan=False)
    stop = StopField()
    seed = fields.Integer(strict=True)
    presence_penalty = fields.Float(validate=validate.Range(min=-2, max=2), allow_nan=False)
    frequency_penalty = fields.Float(validate=validate.Range(min=-2, max=2), allow_nan=False)
    tools = fields.List(fields.Dict(), validate=validate.Length(max=128))
    tool_choice = ToolChoiceField()
    response_format = fields.Dict()
    logprobs = fields.Boolean()
    top_logprobs = fields.Integer(strict=True, validate=validate.Range(min=0, max=20))
    stream = fields.Boolean()
    stream_options = fields.Dict()
    user = fields.String(validate=validate.Length(min=1, max=256))


SAMPLING = ("temperature", "max_tokens", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "n")


def output_tokens(request: dict) -> int:
    """The most tokens a request may generate, as priced: `max_tokens` (or `max_completion_tokens`, else 512) per choice."""
    return (request.get("max_tokens") or request.get("max_completion_tokens") or 512) * request.get("n", 1)


def chat_input(request: dict, model: str) -> dict:
    """worker-vllm's legacy shorthand: the messages, vLLM's sampling parameters, `stream`; extras pass through."""
    sampling = {k: request[k] for k in SAMPLING if k in request}
    if "max_completion_tokens" in request and "max_tokens" not in request:
        sampling["max_tokens"] = request["max_completion_tokens"]
    job_input = {"messages": request["messages"], "sampling_params": sampling}
    if request.get("stream"):
        job_input["stream"] = True
    job_input.update(extras(request, {"messages", "stream", "max_completion_tokens", *SAMPLING}))
    return job_input


def _completion_like(pieces: list) -> bool:
    """Batches whose choices carry whole messages or texts (custom workers' older shapes)."""
    return any(
        isinstance(p, dict) and any(isinstance(c, dict) and ("message" in c or "text" in c) for c in p.get("choices") or [])
        for p in pieces
    )


def _message_text_and_usage(pieces: list) -> tuple[str, dict]:
    text, usage = [], {}
    for batch in pieces:
        if not isinstance(batch, dict):
            continue
        for choice in batch.get("choices") or []:
            if isinstance(choice.get("message"), dict):
                text.append(choice["message"].get("content") or "")
            elif isinstance(choice.get("text"), str):
                text.append(choice["text"])
            elif isinstance(choice.get("tokens"), list):
                text.extend(str(t) for t in choice["tokens"])
        usage = batch.get("usage") or usage
    return "".join(text), usage


def chat_result(output, ctx: ResultContext) -> dict:
    """The worker's output as OpenAI's `chat.completion`: a completion as the worker wrote it,
    or the one its streamed pieces add up to (`chat_stream.py`: SSE text, chunks, vLLM batches)."""
    if isinstance(output, dict) and output.get("object") == "chat.completion":
        return output
    pieces = output if isinstance(output, list) else [output]
    if pieces and all(isinstance(p, dict) and p.get("object") == "chat.completion" for p in pieces):
        return pieces[0]
    if _completion_like(pieces):
        text, usage = _message_text_and_usage(pieces)
        prompt = int(usage.get("input", usage.get("prompt_tokens", 0)) or 0)
        completion = int(usage.get("output", usage.get("completion_tokens", 0)) or 0)
        return {
            "id": f"chatcmpl-{ctx.job_id}",
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
    chunks, rest = chat_stream.parse(pieces)
    chunks += chat_stream.finish(rest)
    if not chunks:
        raise OutputError("chat output is neither a completion nor a stream of chunks or vLLM batches")
    return chat_stream.assemble(chunks, f"chatcmpl-{ctx.job_id}", ctx.created, ctx.model)
