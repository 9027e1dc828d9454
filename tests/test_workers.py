"""Conformance: every surface through podrelay to the emulator running each stock worker.

Each test names the worker (and version) behind its endpoint; the emulated worker checks
input and answers as the real one does (`emulator/workers/`), and podrelay's normalised
result is checked field by field, streamed and not.
"""

from __future__ import annotations

import base64
import json

import pytest
import requests
from openai import OpenAI

from integration.surfaces.embeddings import as_base64

CHAT = {"messages": [{"role": "user", "content": "What is the weather in Paris"}]}
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}]
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
VLLM_VERSIONS = ["worker-vllm@2.25", "worker-vllm@2.24", "worker-vllm@2.23"]


@pytest.fixture
def on_worker(make_stack, emulator):
    """A stack whose `surface` endpoint runs `spec` (e.g. `worker-vllm@2.23`), podrelay told the worker's name."""

    def build(surface: str, spec: str, **changes):
        endpoint = f"ep-{surface}-{spec.replace('@', '-').replace('.', '-').replace('+', '-')}"
        emulator.workers[endpoint] = spec
        name = spec.split("@")[0].split("+")[0]
        return make_stack(endpoints={surface.upper(): endpoint}, runpod_workers={surface.upper(): name}, **changes)

    return build


def wait_job(stack, route: str, body: dict, timeout: float = 30) -> dict:
    job_id = stack.enqueue(route, body)["id"]
    return stack.wait_final([job_id], timeout=timeout)[job_id]


def openai_client(stack) -> OpenAI:
    return OpenAI(base_url=f"{stack.base_url}/openai/v1", api_key=stack.key, max_retries=0, timeout=60)


# -- chat: worker-vllm ------------------------------------------------------------------


@pytest.mark.parametrize("spec", VLLM_VERSIONS)
def test_vllm_chat_result_is_vllms_completion_as_written(on_worker, spec):
    stack = on_worker("chat", spec)
    job = wait_job(stack, "/chat/completions", {**CHAT, "max_tokens": 3, "top_p": 0.9, "seed": 7, "n": 2})
    assert job["status"] == "completed", job
    result = job["result"]
    assert result["object"] == "chat.completion"
    assert result["model"] == "meta-llama/Meta-Llama-3-8B-Instruct"  # the served model, as vLLM wrote it
    assert [c["index"] for c in result["choices"]] == [0, 1]  # n reached vLLM
    assert result["choices"][0]["message"]["content"] == "Echo: What is"  # max_tokens reached vLLM
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 6 and result["usage"]["prompt_tokens"] == 6


@pytest.mark.parametrize("spec", VLLM_VERSIONS)
def test_openais_model_names_reach_vllm_as_its_served_model(on_worker, spec):
    stack = on_worker("chat", spec)
    completion = openai_client(stack).chat.completions.create(model="gpt-4o-mini", messages=CHAT["messages"])
    assert completion.choices[0].message.content.startswith("Echo:")  # vLLM answered: the alias did not reach it
    assert completion.model == "meta-llama/Meta-Llama-3-8B-Instruct"


@pytest.mark.parametrize("spec", VLLM_VERSIONS)
def test_vllm_tool_calls_come_back_streamed_and_not(on_worker, spec):
    stack = on_worker("chat", spec)
    client = openai_client(stack)
    answer = client.chat.completions.create(model="Llama3_8B_Instruct", tools=TOOLS, **CHAT)
    call = answer.choices[0].message.tool_calls[0]
    assert answer.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "weather" and json.loads(call.function.arguments) == {"query": CHAT["messages"][0]["content"]}
    streamed = list(client.chat.completions.create(model="Llama3_8B_Instruct", tools=TOOLS, stream=True, **CHAT))
    deltas = [c.choices[0].delta for c in streamed if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0].tool_calls[0].function.name == "weather"
    arguments = "".join(d.tool_calls[0].function.arguments or "" for d in deltas)
    assert json.loads(arguments) == {"query": CHAT["messages"][0]["content"]}
    assert [c.choices[0].finish_reason for c in streamed if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


@pytest.mark.parametrize("spec", VLLM_VERSIONS)
def test_vllm_stream_of_sse_text_becomes_chunks_and_the_result(on_worker, spec):
    # 2.24+: SSE text cut at any byte; 2.23: several events joined per piece.
    stack = on_worker("chat", spec)
    client = openai_client(stack)
    chunks = list(
        client.chat.completions.create(
            model="Llama3_8B_Instruct", stream=True, stream_options={"include_usage": True}, max_tokens=4, **CHAT
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: What is the"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage.completion_tokens == 4
    job = stack.http.get(f"{stack.base_url}/v1/jobs", timeout=10).json()["data"][0]
    assert job["result"]["choices"][0]["message"]["content"] == "Echo: What is the"
    assert job["result"]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("spec", VLLM_VERSIONS)
def test_vllm_error_ends_the_job_with_the_workers_message(on_worker, spec):
    stack = on_worker("chat", spec)
    job = wait_job(stack, "/chat/completions", {**CHAT, "model": "not-served"})
    assert job["status"] == "failed"
    assert job["error"]["code"] == "worker_error"
    assert "The model `not-served` does not exist." in job["error"]["message"]


# -- transcription: worker-faster_whisper ----------------------------------------------


def test_faster_whisper_transcript_formats_and_word_timestamps(on_worker):
    stack = on_worker("transcribe", "worker-faster_whisper")
    body = {"audioUrl": "https://cdn.example.com/call.mp3", "language": "de", "word_timestamps": True, "beam_size": 2}
    job = wait_job(stack, "/audio/transcriptions", body)
    assert job["status"] == "completed", job
    result = job["result"]
    assert result["text"] == "Transcript of https://cdn.example.com/call.mp3"
    assert result["language"] == "de" and result["segments"][0]["end"] == 2.5
    assert [w["word"] for w in result["words"]][:2] == [" Transcript", " of"]
    srt = wait_job(stack, "/audio/transcriptions", {"audioUrl": "https://cdn.example.com/call.mp3", "response_format": "srt"})
    assert srt["result"]["text"].startswith("1\n00:00:00,000 --> 00:00:02,500\nTranscript of")


def test_faster_whisper_refuses_unknown_fields_before_the_gpu_does(on_worker):
    stack = on_worker("transcribe", "worker-faster_whisper")
    answer = stack.http.post(
        f"{stack.base_url}/v1/audio/transcriptions",
        json={"audioUrl": "https://cdn.example.com/a.mp3", "diarize": True},
        timeout=10,
    )
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "diarize"
    assert "worker-faster_whisper does not accept 'diarize'" in answer.json()["error"]["message"]
    bad_type = stack.http.post(
        f"{stack.base_url}/v1/audio/transcriptions",
        json={"audioUrl": "https://cdn.example.com/a.mp3", "beam_size": "5"},
        timeout=10,
    )
    assert bad_type.status_code == 400 and bad_type.json()["error"]["param"] == "beam_size"


def test_faster_whisper_takes_an_openai_upload_inline(on_worker):
    stack = on_worker("transcribe", "worker-faster_whisper")
    client = openai_client(stack)
    answer = client.audio.transcriptions.create(model="WhisperLargeV3", file=("a.wav", b"RIFF" + b"\x00" * 300), temperature=0.2)
    assert answer.text == "Transcript of 304 uploaded bytes"


def test_worker_validation_errors_come_back_as_the_workers_message(on_worker):
    # Through the direct route podrelay sends RunPod's input as given: the worker's own check answers.
    stack = on_worker("transcribe", "worker-faster_whisper")
    body = {"input": {"audio": "https://cdn.example.com/a.mp3", "diarize": True}}
    run = stack.http.post(f"{stack.base_url}/v1/runpod/transcribe/run", json=body, timeout=10).json()
    job = stack.wait_final([run["podrelay_job_id"]])[run["podrelay_job_id"]]
    assert job["status"] == "failed" and job["error"]["code"] == "worker_error"
    assert job["error"]["message"] == "Unexpected input. diarize is not a valid input option."


# -- embeddings: worker-infinity-embedding ---------------------------------------------


def test_infinity_embeddings_through_the_openai_sdk(on_worker):
    stack = on_worker("embeddings", "worker-infinity-embedding")
    client = openai_client(stack)
    answer = client.embeddings.create(model="BGE_Large", input=["cold starts", "warm pools"])  # the SDK asks for base64
    assert [len(item.embedding) for item in answer.data] == [8, 8]
    job = stack.http.get(f"{stack.base_url}/v1/jobs", timeout=10).json()["data"][0]
    assert job["result"]["data"][0]["embedding"] == as_base64(answer.data[0].embedding)
    assert answer.usage.prompt_tokens == 4
    floats = wait_job(stack, "/embeddings", {"input": "cold starts", "model": "BGE_Large"})["result"]
    assert floats["data"][0]["embedding"] == pytest.approx(answer.data[0].embedding, abs=1e-6)


def test_infinity_refuses_what_it_cannot_do_and_reports_its_errors(on_worker, emulator):
    stack = on_worker("embeddings", "worker-infinity-embedding")
    tokens = stack.http.post(f"{stack.base_url}/v1/embeddings", json={"input": [1, 2, 3]}, timeout=10)
    assert tokens.status_code == 400 and tokens.json()["error"]["param"] == "input"
    dims = stack.http.post(f"{stack.base_url}/v1/embeddings", json={"input": "x", "dimensions": 8}, timeout=10)
    assert dims.status_code == 400 and dims.json()["error"]["param"] == "dimensions"
    # The worker's error object, answered as a COMPLETED job's output (create_error_response).
    error = {"object": "error", "message": "'BAAI/bge-large-en-v1.5'", "type": "BadRequestError", "param": None, "code": 400}
    emulator.steer(stack.settings.endpoints["EMBEDDINGS"], {"output": error})
    job = wait_job(stack, "/embeddings", {"input": "x"})
    assert job["status"] == "failed" and job["error"] == {"code": "worker_error", "message": "'BAAI/bge-large-en-v1.5'"}


# -- images: worker-sdxl, worker-sdxl-turbo, worker-comfyui ---------------------------------


def image_bytes(item: dict) -> bytes:
    """An image item's file: inline base64, or fetched from its (bucket) URL."""
    return base64.b64decode(item["b64_json"]) if "b64_json" in item else requests.get(item["url"], timeout=10).content


@pytest.mark.parametrize("spec", ["worker-sdxl@2.1", "worker-sdxl@2.1+bucket", "worker-sdxl@1.0"])
def test_sdxl_images_and_its_limits(on_worker, spec):
    stack = on_worker("images", spec)
    job = wait_job(stack, "/images/generations", {"prompt": "a lighthouse", "n": 2, "size": "768x512", "seed": 42})
    assert job["status"] == "completed", job
    items = job["result"]["data"]
    assert len(items) == 2 and all(image_bytes(i).startswith(b"\x89PNG") for i in items)
    # The bucket's URLs as the worker gave them; without one, its data URIs moved to podrelay's store.
    assert all(("sha256" in i) != ("+bucket" in spec) for i in items)
    one = wait_job(stack, "/images/generations", {"prompt": "a lighthouse"})
    assert len(one["result"]["data"]) == 1  # 1.0 answers a single image as `image_url`
    too_many = stack.http.post(f"{stack.base_url}/v1/images/generations", json={"prompt": "x", "n": 3}, timeout=10)
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "n"
    unknown = stack.http.post(f"{stack.base_url}/v1/images/generations", json={"prompt": "x", "style": "vivid"}, timeout=10)
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "style"
    scheduler = stack.http.post(f"{stack.base_url}/v1/images/generations", json={"prompt": "x", "scheduler": "LCM"}, timeout=10)
    assert scheduler.status_code == 400 and scheduler.json()["error"]["param"] == "scheduler"
    priced = stack.http.post(f"{stack.base_url}/v1/images/generations", json={"prompt": "x", "num_images": 2}, timeout=10)
    assert priced.status_code == 400 and priced.json()["error"]["param"] == "num_images"  # never overwrites what was priced


def test_sdxl_edits_an_image_by_url_through_its_refiner(on_worker):
    stack = on_worker("image_edit", "worker-sdxl")
    job = wait_job(stack, "/images/edits", {"image": "https://cdn.example.com/in.png", "prompt": "at night", "strength": 0.5})
    assert job["status"] == "completed" and len(job["result"]["data"]) == 1
    inline = stack.http.post(f"{stack.base_url}/v1/images/edits", json={"image": PNG, "prompt": "x"}, timeout=10)
    assert inline.status_code == 400 and inline.json()["error"]["param"] == "image"


@pytest.mark.parametrize("spec", ["worker-sdxl-turbo@1.1", "worker-sdxl-turbo@1.0"])
def test_sdxl_turbo_images(on_worker, spec):
    stack = on_worker("images", spec)
    job = wait_job(stack, "/images/generations", {"prompt": "a lighthouse", "n": 4, "size": "512x512", "num_inference_steps": 2})
    assert job["status"] == "completed", job
    assert len(job["result"]["data"]) == 4 and image_bytes(job["result"]["data"][0]).startswith(b"\x89PNG")
    large = stack.http.post(f"{stack.base_url}/v1/images/generations", json={"prompt": "x", "size": "1024x1024"}, timeout=10)
    assert large.status_code == 400 and large.json()["error"]["param"] == "size"


WORKFLOW = {
    "3": {"class_type": "KSampler", "inputs": {"seed": "{{seed}}", "steps": 4}},
    "5": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": "{{width}}", "height": "{{height}}", "batch_size": "{{batch_size}}"},
    },
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}, photo"}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "podrelay"}},
}


@pytest.mark.parametrize("spec", ["worker-comfyui@5.8", "worker-comfyui@4.1", "worker-comfyui@5.8+bucket"])
def test_comfyui_runs_the_configured_workflow_with_the_request_in_its_placeholders(on_worker, emulator, tmp_path, spec):
    workflow = tmp_path / "flux.json"
    workflow.write_text(json.dumps(WORKFLOW))
    stack = on_worker("images", spec, comfyui_workflows={"IMAGES": str(workflow)})
    job_id = stack.enqueue("/images/generations", {"prompt": "a lighthouse", "n": 2, "size": "512x768"})["id"]
    job = stack.wait_final([job_id])[job_id]
    assert job["status"] == "completed", job
    sent = next(j for j in emulator.jobs.values() if j.endpoint_id == stack.settings.endpoints["IMAGES"]).input["workflow"]
    assert sent["5"]["inputs"] == {"width": 512, "height": 768, "batch_size": 2}
    assert sent["6"]["inputs"]["text"] == "a lighthouse, photo" and isinstance(sent["3"]["inputs"]["seed"], int)
    items = job["result"]["data"]
    assert len(items) == (1 if "4.1" in spec else 2)  # before 5.0 the worker answered one image
    if "+bucket" in spec:
        assert items[0]["url"].startswith(emulator.base_url)  # s3_url items: links to the bucket
    else:
        assert image_bytes(items[0]).startswith(b"\x89PNG") and "sha256" in items[0]  # base64 items: in podrelay's store


def test_comfyui_without_a_workflow_is_refused_up_front(on_worker):
    stack = on_worker("images", "worker-comfyui")
    answer = stack.http.post(f"{stack.base_url}/v1/images/generations", json={"prompt": "x"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "workflow"
    assert "COMFYUI_WORKFLOW_IMAGES" in answer.json()["error"]["message"]


# -- upscale, speech, video: worker-esrgan, worker-bark, worker-mochi ------------------------


def test_esrgan_upscales_by_url_and_the_file_downloads(on_worker):
    stack = on_worker("upscale", "worker-esrgan")
    job = wait_job(stack, "/images/upscale", {"image": "https://cdn.example.com/small.png", "scale": 2, "tile": 256})
    assert job["status"] == "completed", job
    url = job["result"]["data"][0]["url"]
    assert requests.get(url, timeout=10).content.startswith(b"\x89PNG")
    download = stack.http.get(f"{stack.base_url}/v1/jobs/{job['id']}/download", allow_redirects=False, timeout=10)
    assert download.status_code == 302 and download.headers["Location"] == url
    uploaded = wait_job(stack, "/images/upscale", {"image": PNG})  # stored, and fetched by the worker by URL
    assert uploaded["status"] == "completed", uploaded


def test_esrgan_refuses_an_upload_it_could_not_fetch(make_stack, emulator):
    emulator.workers["ep-upscale-nourl"] = "worker-esrgan"
    # No PUBLIC_BASE_URL and no bucket: nowhere the worker could fetch an upload from.
    stack = make_stack(callbacks=False, endpoints={"UPSCALE": "ep-upscale-nourl"}, runpod_workers={"UPSCALE": "worker-esrgan"})
    inline = stack.http.post(f"{stack.base_url}/v1/images/upscale", json={"image": PNG}, timeout=10)
    assert inline.status_code == 400 and inline.json()["error"]["param"] == "image"
    assert "FILES_URL or PUBLIC_BASE_URL" in inline.json()["error"]["message"]


@pytest.mark.parametrize(
    "surface, spec, route, body",
    [
        ("upscale", "worker-esrgan+nobucket", "/images/upscale", {"image": "https://cdn.example.com/small.png"}),
        ("speech", "worker-bark+nobucket", "/audio/speech", {"input": "Hello"}),
    ],
)
def test_a_worker_without_a_bucket_fails_saying_so(on_worker, surface, spec, route, body):
    stack = on_worker(surface, spec)
    job = wait_job(stack, route, body)
    assert job["status"] == "failed" and job["error"]["code"] == "worker_error"
    assert "BUCKET_ENDPOINT_URL" in job["error"]["message"]


def test_bark_speaks_openai_voice_names_as_wav(on_worker, emulator):
    stack = on_worker("speech", "worker-bark")
    job = wait_job(stack, "/audio/speech", {"input": "Hello there", "voice": "nova"})
    assert job["status"] == "completed", job
    assert job["result"]["format"] == "wav" and job["result"]["data"][0]["url"].startswith(emulator.base_url)
    sent = next(j for j in emulator.jobs.values() if j.endpoint_id == stack.settings.endpoints["SPEECH"]).input
    assert sent == {"text_prompt": "Hello there", "voice_preset": "v2/en_speaker_7"}
    mp3 = stack.http.post(f"{stack.base_url}/v1/audio/speech", json={"input": "x", "response_format": "mp3"}, timeout=10)
    assert mp3.status_code == 400 and mp3.json()["error"]["param"] == "response_format"


def test_mochi_makes_video_and_its_failures_are_the_jobs(on_worker, emulator):
    stack = on_worker("video", "worker-mochi")
    job = wait_job(stack, "/videos/generations", {"prompt": "waves", "duration": 2, "size": "848x480", "steps": 20})
    assert job["status"] == "completed", job
    sent = next(j for j in emulator.jobs.values() if j.endpoint_id == stack.settings.endpoints["VIDEO"]).input
    assert sent == {"positive_prompt": "waves", "width": 848, "height": 480, "num_frames": 48, "steps": 20}
    assert requests.get(job["result"]["data"][0]["url"], timeout=10).content[4:8] == b"ftyp"
    image = stack.http.post(f"{stack.base_url}/v1/videos/generations", json={"prompt": "x", "image": PNG}, timeout=10)
    assert image.status_code == 400 and image.json()["error"]["param"] == "image"
    broken = on_worker("video", "worker-mochi+nobucket")
    failed = wait_job(broken, "/videos/generations", {"prompt": "waves"})
    assert failed["status"] == "failed" and failed["error"] == {
        "code": "worker_error",
        "message": "UPLOADTHING_API_KEY environment variable not set",
    }


# -- the direct routes: RunPod's own API through podrelay ---------------------------------


def test_every_stream_piece_reaches_the_runpod_sdk_while_podrelay_relays_it(on_worker, emulator):
    import runpod  # the official SDK as the client

    stack = on_worker("chat", "worker-vllm@2.24")
    emulator.steer(stack.settings.endpoints["CHAT"], {"delay": 1.5})
    runpod.api_key = stack.key
    runpod.endpoint_url_base = f"{stack.base_url}/v1/runpod"
    body = {"openai_route": "/v1/chat/completions", "openai_input": {**CHAT, "stream": True}}
    run = runpod.Endpoint("chat").run({"input": body})  # a streamed input: podrelay relays it from the start
    pieces = list(run.stream())
    expected = emulator.jobs[run.job_id].result.pieces
    assert len(expected) > 7 and pieces == expected
    assert "".join(pieces).endswith("data: [DONE]\n\n")
    late = stack.http.get(f"{stack.base_url}/v1/runpod/chat/stream/{run.job_id}", params={"after": "0-0"}, timeout=10).json()
    assert [p["output"] for p in late["stream"]] == expected and late["status"] == "COMPLETED"  # any reader, any time
    job = stack.job(stack.http.get(f"{stack.base_url}/v1/jobs", timeout=10).json()["data"][0]["id"])
    assert job["result"]["choices"][0]["message"]["content"] == "Echo: What is the weather in Paris"


def test_a_direct_jobs_stream_asked_for_late_still_arrives_whole(on_worker, emulator):
    import runpod

    stack = on_worker("chat", "worker-vllm@2.23")
    emulator.steer(stack.settings.endpoints["CHAT"], {"delay": 1.0})
    runpod.api_key = stack.key
    runpod.endpoint_url_base = f"{stack.base_url}/v1/runpod"
    body = {"openai_route": "/v1/chat/completions", "openai_input": CHAT}  # not streamed: podrelay polls /status
    run = runpod.Endpoint("chat").run({"input": body})
    pieces = list(run.stream())  # the first read makes podrelay read RunPod's stream into the job's log
    assert pieces == emulator.jobs[run.job_id].result.pieces and pieces[0]["object"] == "chat.completion"


def test_direct_run_takes_runpods_own_fields_and_is_stored_first(on_worker, emulator, receivers):
    stack = on_worker("embeddings", "worker-infinity-embedding")
    hook = receivers()
    s3 = {"accessId": "AKIA", "accessSecret": "s", "bucketName": "b", "endpointUrl": "https://s3.example.com"}
    body = {"input": {"model": "BAAI/bge-m3", "input": "x"}, "webhook": hook.url, "s3Config": s3, "policy": {"ttl": 60000}}
    answer = stack.http.post(f"{stack.base_url}/v1/runpod/embeddings/run", json=body, timeout=10).json()
    assert emulator.jobs[answer["id"]].webhook.startswith(f"{stack.base_url}/callbacks/runpod/")  # podrelay's callback stays
    job = stack.wait_final([answer["podrelay_job_id"]])[answer["podrelay_job_id"]]
    assert job["status"] == "completed" and job["result"]["model"] == "BAAI/bge-m3"
    delivery = hook.wait_for(1)[0]
    assert json.loads(delivery["body"])["data"]["id"] == answer["podrelay_job_id"]  # the client's webhook got the signed event


def test_runsync_answers_a_sync_id_and_a_callback_before_the_answer_finds_its_job(on_worker):
    stack = on_worker("embeddings", "worker-infinity-embedding")
    answer = stack.http.post(
        f"{stack.base_url}/v1/runpod/embeddings/runsync", json={"input": {"model": "BAAI/bge-m3", "input": "x"}}, timeout=30
    ).json()
    assert answer["id"].startswith("sync-") and answer["status"] == "COMPLETED"
    job = stack.wait_final([answer["podrelay_job_id"]])[answer["podrelay_job_id"]]
    assert job["status"] == "completed" and job["runpod"]["id"] == answer["id"]


# -- RunPod refusing podrelay, payload limits, configuration --------------------------------


def test_a_runpod_that_refuses_the_api_key_is_reported_and_jobs_give_up(make_stack):
    stack = make_stack(runpod_api_key="wrong-key", submit_give_up_after=3.0, retry_base=0.2)
    job_id = stack.enqueue("/embeddings", {"input": "x"})["id"]
    job = stack.wait_final([job_id], timeout=40)[job_id]
    assert job["status"] == "failed" and job["error"]["code"] == "runpod_auth"
    assert job["error"]["message"].startswith("RunPod rejected the API key (HTTP 401)")
    ready = stack.http.get(f"{stack.base_url}/readyz", timeout=10)
    assert ready.status_code == 503 and any("RunPod rejected podrelay's API key" in p for p in ready.json()["checks"]["problems"])
    usage = stack.http.get(f"{stack.base_url}/v1/usage", timeout=10).json()["usage"]
    assert usage["jobs_in_flight"] == 0 and usage["reserved"] == 0  # the quota was released


def test_a_worker_input_over_runpods_limit_is_refused_naming_it(make_stack):
    stack = make_stack(workers=0, max_body_bytes=40 * 1024 * 1024)
    big = {"input": "x" * (11 * 1024 * 1024)}
    answer = stack.http.post(f"{stack.base_url}/v1/embeddings", json=big, timeout=30)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"
    assert "RunPod takes at most 10 MB" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    "variable, value, said",
    [
        ("RUNPOD_WORKER_CHAT", "worker-nope", "is not a worker podrelay knows"),
        ("RUNPOD_WORKER_CHAT", "worker-sdxl", "worker-sdxl does not serve chat"),
        ("RUNPOD_WORKER_SOUNDS", "custom", "there is no surface 'sounds'"),
    ],
)
def test_a_wrong_worker_setting_stops_start_up_with_one_line(variable, value, said):
    import os
    import subprocess
    import sys

    env = {**os.environ, variable: value, "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "keys", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert said in done.stderr and "Traceback" not in done.stderr, done.stderr
