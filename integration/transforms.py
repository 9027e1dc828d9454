"""How a validated request becomes a RunPod worker's `input`, and its `output` a result.

Each surface has a pair: `*_input(request, model)` and `*_result(output, context)`. The
shapes follow the stock RunPod workers (worker-vllm, worker-faster_whisper,
worker-infinity-embedding, the image workers) on the way in, and OpenAI's response
objects on the way out, so clients see one shape whatever worker ran the job.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

# Fields podrelay itself consumes; everything else in a request passes through.
_OWN_FIELDS = {"model", "webhook_url", "policy"}


class OutputError(ValueError):
    """The worker's output does not have a shape this surface understands."""


@dataclass(frozen=True)
class ResultContext:
    """What a normaliser may need beside the output."""

    job_id: str
    model: str
    created: int
    request: dict


def _extras(request: dict, consumed: set[str]) -> dict:
    return {k: v for k, v in request.items() if k not in consumed and k not in _OWN_FIELDS}


# --- chat: worker-vllm ----------------------------------------------------------------


def chat_input(request: dict, model: str) -> dict:
    sampling = {k: request[k] for k in ("temperature", "max_tokens") if k in request}
    job_input = {"messages": request["messages"], "sampling_params": sampling}
    if request.get("stream"):
        job_input["stream"] = True
    job_input.update(_extras(request, {"messages", "temperature", "max_tokens", "stream"}))
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


# --- images: worker-sdxl / flux style workers -----------------------------------------


def image_input(request: dict, model: str) -> dict:
    job_input = {"prompt": request["prompt"], "num_images": request.get("n", 1), "model": model}
    if "negative_prompt" in request:
        job_input["negative_prompt"] = request["negative_prompt"]
    if "size" in request:
        width, height = request["size"].split("x")
        job_input["width"], job_input["height"] = int(width), int(height)
    job_input.update(_extras(request, {"prompt", "negative_prompt", "n", "size", "response_format"}))
    return job_input


_DATA_URI = re.compile(r"^data:[\w/+.-]+;base64,")


def _image_item(item) -> dict:
    if isinstance(item, dict):
        for key in ("b64_json", "image", "base64", "url", "image_url"):
            if isinstance(item.get(key), str):
                return _image_item(item[key])
        raise OutputError("image item has no image")
    if not isinstance(item, str) or not item:
        raise OutputError("image item is not a string")
    if item.startswith(("http://", "https://")):
        return {"url": item}
    return {"b64_json": _DATA_URI.sub("", item)}


def image_result(output, ctx: ResultContext) -> dict:
    if isinstance(output, dict):
        items = output.get("images") or output.get("data")
        if items is None:
            single = output.get("image") or output.get("image_url") or output.get("url")
            items = [single] if single else None
    elif isinstance(output, (list, str)):
        items = output if isinstance(output, list) else [output]
    else:
        items = None
    if not items:
        raise OutputError("image output has no images")
    return {"created": ctx.created, "data": [_image_item(item) for item in items]}


# --- transcription: worker-faster_whisper ----------------------------------------------

_WHISPER_MODELS = {"WhisperLargeV3": "large-v3"}
_WHISPER_FORMATS = {"srt": "srt", "vtt": "vtt"}


def transcription_input(request: dict, model: str) -> dict:
    job_input = {
        "audio": request["audioUrl"],
        "model": _WHISPER_MODELS.get(model, model),
        "transcription": _WHISPER_FORMATS.get(request.get("response_format", ""), "plain_text"),
    }
    if "language" in request:
        job_input["language"] = request["language"]
    if "prompt" in request:
        job_input["initial_prompt"] = request["prompt"]
    job_input.update(_extras(request, {"audioUrl", "language", "prompt", "response_format"}))
    return job_input


def transcription_file_input(audio: bytes, request: dict, model: str) -> dict:
    """An uploaded file (OpenAI's multipart form), sent inline as worker-faster_whisper allows."""
    job_input = transcription_input({**request, "audioUrl": ""}, model)
    del job_input["audio"]
    job_input["audio_base64"] = base64.b64encode(audio).decode()
    return job_input


def transcription_result(output, ctx: ResultContext) -> dict:
    if not isinstance(output, dict):
        raise OutputError("transcription output is not an object")
    segments = output.get("segments") or []
    text = output.get("transcription") or output.get("text")
    if text is None:
        if not segments:
            raise OutputError("transcription output has neither text nor segments")
        text = "".join(str(s.get("text", "")) for s in segments).strip()
    return {"text": text, "segments": segments, "language": output.get("detected_language") or output.get("language")}


# --- embeddings: worker-infinity-embedding ---------------------------------------------

_EMBEDDING_MODELS = {"BGE_Large": "BAAI/bge-large-en-v1.5", "Bge_M3_INT8": "BAAI/bge-m3"}


def embedding_input(request: dict, model: str) -> dict:
    job_input = {"model": _EMBEDDING_MODELS.get(model, model), "input": request["input"]}
    job_input.update(_extras(request, {"input"}))
    return job_input


def embedding_result(output, ctx: ResultContext) -> dict:
    data = output.get("data") if isinstance(output, dict) else output
    if not isinstance(data, list) or not data:
        raise OutputError("embedding output has no data")
    items = []
    for index, item in enumerate(data):
        vector = item.get("embedding") if isinstance(item, dict) else item
        if not isinstance(vector, (list, str)):
            raise OutputError("embedding item has no vector")
        items.append({"object": "embedding", "index": index, "embedding": vector})
    usage = output.get("usage") if isinstance(output, dict) else None
    return {"object": "list", "data": items, "model": ctx.model, "usage": usage or {"prompt_tokens": 0, "total_tokens": 0}}


# --- media surfaces: speech, video, music, image edits --------------------------------
# Inputs follow the common RunPod workers' names; outputs of any of them (a file, a list
# of files, base64, data URIs or URLs) become `{"created", "data": [{b64_json}|{url}]}`.

_MEDIA_KEYS = (
    "images",
    "videos",
    "audios",
    "image",
    "video",
    "audio",
    "audio_url",
    "video_url",
    "image_url",
    "url",
    "data",
    "output",
)


def media_result(output, ctx: ResultContext) -> dict:
    found = None
    if isinstance(output, dict):
        for key in _MEDIA_KEYS:
            if output.get(key):
                found = output[key]
                break
    elif isinstance(output, (list, str)):
        found = output
    if not found:
        raise OutputError("output has no file")
    files = found if isinstance(found, list) else [found]
    result = {"created": ctx.created, "data": [_image_item(item) for item in files]}
    if isinstance(output, dict) and isinstance(output.get("format"), str):
        result["format"] = output["format"]
    return result


def _size(request: dict, job_input: dict) -> None:
    if "size" in request:
        width, height = request["size"].split("x")
        job_input["width"], job_input["height"] = int(width), int(height)


def speech_input(request: dict, model: str) -> dict:
    job_input = {
        "text": request["input"],
        "voice": request.get("voice", "default"),
        "output_format": request.get("response_format", "mp3"),
    }
    if "speed" in request:
        job_input["speed"] = request["speed"]
    job_input.update(_extras(request, {"input", "voice", "response_format", "speed"}))
    return job_input


def video_input(request: dict, model: str) -> dict:
    fps = request.get("fps", 24)
    job_input = {"prompt": request["prompt"], "num_frames": int(request.get("duration", 5) * fps), "fps": fps, "model": model}
    for key in ("image", "negative_prompt"):
        if key in request:
            job_input[key] = request[key]
    _size(request, job_input)
    job_input.update(_extras(request, {"prompt", "image", "negative_prompt", "duration", "fps", "size"}))
    return job_input


def audio_video_input(request: dict, model: str) -> dict:
    fps = request.get("fps", 25)
    job_input = {"audio": request["audioUrl"], "num_frames": 0, "fps": fps, "model": model}  # 0: as long as the audio
    for key in ("image", "prompt"):
        if key in request:
            job_input[key] = request[key]
    job_input.update(_extras(request, {"audioUrl", "image", "prompt", "fps"}))
    return job_input


def music_input(request: dict, model: str) -> dict:
    job_input = {"prompt": request["prompt"], "duration": request.get("duration", 30), "model": model}
    job_input.update(_extras(request, {"prompt", "duration"}))
    return job_input


def image_edit_input(request: dict, model: str) -> dict:
    job_input = {"image": request["image"], "prompt": request["prompt"], "num_images": request.get("n", 1), "model": model}
    if "strength" in request:
        job_input["strength"] = request["strength"]
    _size(request, job_input)
    job_input.update(_extras(request, {"image", "prompt", "n", "strength", "size"}))
    return job_input


def upscale_input(request: dict, model: str) -> dict:
    job_input = {"image": request["image"], "scale": request.get("scale", 4), "model": model}
    job_input.update(_extras(request, {"image", "scale"}))
    return job_input


def background_removal_input(request: dict, model: str) -> dict:
    job_input = {"image": request["image"], "task": "remove_background", "model": model}
    job_input.update(_extras(request, {"image"}))
    return job_input
