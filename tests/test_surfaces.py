"""The registry's mappings: requests to worker inputs, worker outputs to OpenAI-shaped results."""

from __future__ import annotations

import pytest

from integration import surfaces
from integration.surfaces.outputs import OutputError, ResultContext

CTX = ResultContext(job_id="j1", model="m", created=1773504000, request={})


def test_custom_chat_input_is_worker_vllms_legacy_shorthand():
    request = {
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.3,
        "max_tokens": 50,
        "stream": True,
        "top_p": 0.5,
    }
    job_input = surfaces.get("chat").to_input(request, "Llama3_8B_Instruct")
    assert job_input == {
        "messages": request["messages"],
        "sampling_params": {"temperature": 0.3, "max_tokens": 50, "top_p": 0.5},
        "stream": True,
    }


@pytest.mark.parametrize(
    "output",
    [
        [{"choices": [{"tokens": ["Hel", "lo"]}], "usage": {"input": 3, "output": 2}}],
        {"choices": [{"tokens": ["Hello"]}], "usage": {"input": 3, "output": 2}},
        {
            "choices": [{"message": {"role": "assistant", "content": "Hello"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        },
    ],
)
def test_chat_outputs_become_a_chat_completion(output):
    result = surfaces.get("chat").to_result(output, CTX)
    assert result["object"] == "chat.completion"
    assert result["choices"][0]["message"] == {"role": "assistant", "content": "Hello"}
    assert result["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert result["id"] == "chatcmpl-j1" and result["model"] == "m"


def test_image_input_maps_size_and_count():
    job_input = surfaces.get("images").to_input(
        {"prompt": "cat", "n": 2, "size": "512x768", "negative_prompt": "dog"}, "Flux1schnell"
    )
    assert job_input == {
        "prompt": "cat",
        "num_images": 2,
        "model": "Flux1schnell",
        "negative_prompt": "dog",
        "width": 512,
        "height": 768,
    }


@pytest.mark.parametrize(
    "output, expected",
    [
        ({"images": ["data:image/png;base64,AAAA", "BBBB"]}, [{"b64_json": "AAAA"}, {"b64_json": "BBBB"}]),
        ({"image_url": "https://cdn.example.com/i.png"}, [{"url": "https://cdn.example.com/i.png"}]),
        ({"images": [{"image": "CCCC"}]}, [{"b64_json": "CCCC"}]),
        ("data:image/png;base64,DDDD", [{"b64_json": "DDDD"}]),
    ],
)
def test_image_outputs_become_openai_data(output, expected):
    assert surfaces.get("images").to_result(output, CTX) == {"created": 1773504000, "data": expected}


def test_transcription_input_follows_faster_whisper():
    request = {"audioUrl": "https://a.example.com/x.mp3", "language": "en", "prompt": "names", "response_format": "srt"}
    assert surfaces.get("transcribe").to_input(request, "WhisperLargeV3") == {
        "audio": "https://a.example.com/x.mp3",
        "model": "large-v3",
        "transcription": "srt",
        "language": "en",
        "initial_prompt": "names",
    }


def test_transcription_output_gives_text_segments_language():
    segments = [{"id": 0, "start": 0.0, "end": 1.0, "text": " Hello"}, {"id": 1, "start": 1.0, "end": 2.0, "text": " there"}]
    result = surfaces.get("transcribe").to_result({"segments": segments, "detected_language": "en"}, CTX)
    assert result == {"text": "Hello there", "segments": segments, "language": "en"}


def test_embedding_input_and_output_follow_openai():
    surface = surfaces.get("embeddings")
    assert surface.to_input({"input": ["a", "b"], "dimensions": 8}, "Bge_M3_INT8") == {
        "model": "BAAI/bge-m3",
        "input": ["a", "b"],
        "dimensions": 8,
    }
    result = surface.to_result(
        {"data": [{"embedding": [0.1, 0.2]}, {"embedding": [0.3, 0.4]}], "usage": {"total_tokens": 2}}, CTX
    )
    assert result["object"] == "list"
    assert result["data"] == [
        {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
        {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
    ]


@pytest.mark.parametrize(
    "surface, output",
    [("chat", "just text"), ("images", {"nothing": 1}), ("transcribe", []), ("embeddings", {"data": []}), ("images", None)],
)
def test_unreadable_outputs_raise_output_error(surface, output):
    with pytest.raises(OutputError):
        surfaces.get(surface).to_result(output, CTX)


def test_every_surface_has_a_route_schema_models_and_mapping():
    for surface in surfaces.SURFACES.values():
        assert surface.route.startswith("/") and surface.object.endswith(".enqueue")
        assert surface.models and surface.schema is not None
        assert callable(surface.to_input) and callable(surface.to_result)
