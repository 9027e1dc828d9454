"""`custom`: the emulator's own worker for endpoints that name none, made from the input's
shape so any surface gets an answer in a shape the stock workers use: worker-vllm's legacy
batches for chat (streamed word by word when asked), an image worker's `images`,
faster-whisper's transcript, infinity's embeddings, and a file for the media surfaces.
"""

from __future__ import annotations

import base64
import hashlib

from emulator.media import tiny_mp4, tiny_png, tiny_wav

NAME = "custom"
VERSIONS = ("latest",)
AGGREGATE = True
BUCKET = False  # deployed without a bucket by default: files come back inline


def make_handler(env, job_input: dict | None = None):
    """A generator for chat inputs (worker-vllm's legacy batches), a plain handler otherwise."""
    if isinstance(job_input, dict) and "messages" in job_input:

        def chat(job):
            output = make_output(job["input"])
            words = "".join(output[0]["choices"][0]["tokens"]).split(" ")
            if not job["input"].get("stream"):
                yield output[0]
                return
            for i, word in enumerate(words):
                yield {"choices": [{"tokens": [word if i == 0 else " " + word]}], "usage": output[0]["usage"]}

        return chat

    def handler(job):
        return make_output(job["input"])

    return handler


def make_output(job_input: dict):
    """An output in the shape the stock worker for this kind of input gives."""
    if "messages" in job_input:
        last = next((m.get("content") for m in reversed(job_input["messages"]) if m.get("role") == "user"), "")
        text = f"Echo: {last if isinstance(last, str) else 'content parts'}"
        return [
            {"choices": [{"tokens": [text]}], "usage": {"input": len(str(job_input["messages"])) // 4, "output": len(text) // 4}}
        ]
    if "text" in job_input:  # text to speech
        return {"audio": base64.b64encode(tiny_wav(job_input["text"])).decode(), "format": "wav"}
    if "num_frames" in job_input:  # video, from text, an image or audio
        return {"video": base64.b64encode(tiny_mp4(str(job_input))).decode()}
    if "duration" in job_input and "prompt" in job_input:  # music
        return {"audio": base64.b64encode(tiny_wav(job_input["prompt"])).decode(), "format": "wav"}
    if "image" in job_input:  # edit, upscale, background removal
        image = "data:image/png;base64," + base64.b64encode(tiny_png(str(job_input))).decode()
        return {"images": [image] * int(job_input.get("num_images", 1))}
    if "audio" in job_input or "audio_base64" in job_input:
        source = job_input.get("audio") or f"{len(base64.b64decode(job_input['audio_base64']))} uploaded bytes"
        text = f"Transcript of {source}"
        segments = [{"id": 0, "seek": 0, "start": 0.0, "end": 2.5, "text": " " + text}]
        return {
            "segments": segments,
            "detected_language": job_input.get("language", "en"),
            "transcription": text,
            "device": "cuda",
        }
    if "prompt" in job_input:
        image = "data:image/png;base64," + base64.b64encode(tiny_png(job_input["prompt"])).decode()
        return {"images": [image] * int(job_input.get("num_images", 1))}
    if "input" in job_input:
        texts = job_input["input"] if isinstance(job_input["input"], list) else [job_input["input"]]
        data = []
        for index, text in enumerate(texts):
            digest = hashlib.sha256(str(text).encode()).digest()
            data.append({"object": "embedding", "index": index, "embedding": [round(b / 255 - 0.5, 4) for b in digest[:8]]})
        tokens = sum(len(str(t).split()) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": job_input.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    return {"echo": job_input}
