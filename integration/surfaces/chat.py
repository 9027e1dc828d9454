"""Chat: the request schema, worker-vllm's input, and its output as a `chat.completion`.

worker-vllm reads `messages` and `sampling_params`; it answers a list of batches
(`[{"choices": [{"tokens": [...]}], "usage": {"input", "output"}}]`) or, on its OpenAI
route, a completion. Streamed pieces (RunPod's `/stream`) carry the same batches.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

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


class ChatSchema(RequestSchema):
    """`POST /v1/chat/completions`."""

    messages = fields.List(fields.Nested(MessageSchema), required=True, validate=validate.Length(min=1, max=MAX_ITEMS))
    temperature = fields.Float(validate=validate.Range(min=0, max=2), allow_nan=False)
    max_tokens = fields.Integer(strict=True, validate=validate.Range(min=1, max=8192))
    stream = fields.Boolean()
    user = fields.String(validate=validate.Length(min=1, max=256))


def chat_input(request: dict, model: str) -> dict:
    """worker-vllm's input: the messages, sampling parameters, `stream`; extras pass through."""
    sampling = {k: request[k] for k in ("temperature", "max_tokens") if k in request}
    job_input = {"messages": request["messages"], "sampling_params": sampling}
    if request.get("stream"):
        job_input["stream"] = True
    job_input.update(extras(request, {"messages", "temperature", "max_tokens", "stream"}))
    return job_input


def _chat_text_and_usage(output) -> tuple[str, dict]:
    if isinstance(output, dict) and isinstance(output.get("choices"), list):
        batches = [output]
    elif isinstance(output, list) and all(isinstance(b, dict) for b in output):
        batches = output
    else:
        raise OutputError("chat output is neither a vLLM batch list nor a completion")
    text, usage = [], {}
    for batch in batches:
        for choice in batch.get("choices", []):
            if isinstance(choice.get("tokens"), list):
                text.extend(str(t) for t in choice["tokens"])
            elif isinstance(choice.get("message"), dict):
                text.append(choice["message"].get("content") or "")
            elif isinstance(choice.get("text"), str):
                text.append(choice["text"])
        usage = batch.get("usage") or usage
    return "".join(text), usage


def chat_result(output, ctx: ResultContext) -> dict:
    """The worker's output as OpenAI's `chat.completion`."""
    if isinstance(output, dict) and output.get("object") == "chat.completion":
        return output
    text, usage = _chat_text_and_usage(output)
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


def chat_chunk_text(chunk) -> str:
    """The text of one piece of worker-vllm's stream (`{"output": {"choices": [{"tokens"}]}}`)."""
    output = chunk.get("output") if isinstance(chunk, dict) else chunk
    if isinstance(output, str):
        return output
    try:
        return _chat_text_and_usage(output)[0]
    except OutputError:
        return ""
