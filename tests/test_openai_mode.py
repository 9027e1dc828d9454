"""The official `openai` SDK against a live podrelay on loopback (werkzeug, workers, emulator)."""

from __future__ import annotations

import base64
import time

import openai
import pytest
import requests


@pytest.fixture
def sdk(make_stack):
    stack = make_stack()
    client = openai.OpenAI(base_url=f"{stack.base_url}/openai/v1", api_key=stack.key, max_retries=0, timeout=30)
    client.stack = stack
    return client


def test_chat_completion(sdk):
    completion = sdk.chat.completions.create(model="Llama3_8B_Instruct", messages=[{"role": "user", "content": "Hello there"}])
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Echo: Hello there"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    job_id = completion.id.removeprefix("chatcmpl-")
    assert sdk.stack.job(job_id)["status"] == "completed"  # still a tracked job


def test_embeddings(sdk):
    answer = sdk.embeddings.create(model="BGE_Large", input=["cold starts", "warm pools"])
    assert [item.index for item in answer.data] == [0, 1]
    assert all(isinstance(x, float) for x in answer.data[0].embedding)


def test_image_generation_b64_and_url(sdk):
    image = sdk.images.generate(model="Flux1schnell", prompt="a lighthouse", response_format="b64_json")
    assert base64.b64decode(image.data[0].b64_json).startswith(b"\x89PNG")
    linked = sdk.images.generate(model="Flux1schnell", prompt="a lighthouse", response_format="url", n=2)
    assert len(linked.data) == 2
    fetched = requests.get(linked.data[1].url, timeout=5)  # a signed link, no key
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("response_format", ["json", "verbose_json", "text"])
def test_audio_transcription_upload(sdk, response_format):
    audio = b"ID3" + bytes(2000)
    answer = sdk.audio.transcriptions.create(
        model="WhisperLargeV3", file=("call.mp3", audio, "audio/mpeg"), language="en", response_format=response_format
    )
    text = answer if isinstance(answer, str) else answer.text
    assert text.strip() == "Transcript of 2003 uploaded bytes"
    if response_format == "verbose_json":
        assert answer.language == "en" and answer.duration == 2.5


def test_models_lists_every_surfaces_models(sdk):
    ids = {model.id for model in sdk.models.list()}
    assert {"Llama3_8B_Instruct", "Flux1schnell", "WhisperLargeV3", "BGE_Large", "Bge_M3_INT8"} <= ids


def test_invalid_key_raises_authentication_error(sdk):
    bad = openai.OpenAI(base_url=str(sdk.base_url), api_key="pr_not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        bad.chat.completions.create(model="Llama3_8B_Instruct", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.code == "invalid_api_key"


def test_invalid_body_raises_bad_request_error(sdk):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.chat.completions.create(model="Llama3_8B_Instruct", messages=[{"role": "user", "content": "hi"}], temperature=5)
    assert raised.value.param == "temperature"


def test_failed_job_raises_a_server_error_the_sdk_does_not_retry(sdk):
    retrying = openai.OpenAI(base_url=str(sdk.base_url), api_key=sdk.api_key, max_retries=2)
    before = len(sdk.stack.http.get(f"{sdk.stack.base_url}/v1/jobs").json()["data"])
    with pytest.raises(openai.InternalServerError) as raised:
        retrying.chat.completions.create(
            model="Llama3_8B_Instruct",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"emulate": {"outcome": "FAILED", "error": "OOM"}},
        )
    assert raised.value.status_code == 502 and "OOM" in raised.value.message
    after = len(sdk.stack.http.get(f"{sdk.stack.base_url}/v1/jobs").json()["data"])
    assert after == before + 1  # one job, not three


def test_streaming_chat_arrives_in_chunks_from_runpods_stream(sdk, emulator):
    words = " ".join(f"word{n}" for n in range(12))
    stream = sdk.chat.completions.create(
        model="Llama3_8B_Instruct",
        messages=[{"role": "user", "content": words}],
        stream=True,
        extra_body={"emulate": {"delay": 1.5}},
    )
    chunks, arrivals = [], []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        chunks.append(chunk)
        arrivals.append(time.monotonic())
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert content == f"Echo: {words}"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    texts = [c for c in chunks if c.choices[0].delta.content]
    assert len(texts) >= 4  # pieces, not one block at the end
    assert arrivals[-1] - arrivals[1] > 0.5  # and they came while the job ran
    stream_reads = sum(n for (op, _), n in emulator.calls.items() if op == "stream")
    assert stream_reads >= 2


def test_streaming_a_failed_job_ends_with_an_error_event(sdk):
    raw = sdk.stack.http.post(
        f"{sdk.stack.base_url}/openai/v1/chat/completions",
        json={
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "emulate": {"outcome": "FAILED", "error": "OOM"},
        },
        stream=True,
        timeout=30,
    )
    assert raw.headers["Content-Type"].startswith("text/event-stream")
    lines = [line for line in raw.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert '"code":"provider_error"' in lines[-2] and "OOM" in lines[-2]
