"""The blob store: both backends (a directory, and a real S3-protocol server on loopback),
file results kept there instead of Redis, large uploads handed to the worker by URL, and
the sweep of expired jobs' files."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import time

import pytest
import redis
import requests
from openai import OpenAI

from integration.files import results
from integration.files.store import DirectoryStore, FileMissing, S3Store, file_key, open_store
from integration.files.sweep import LOCK, sweep
from integration.jobs.store import JOB

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(params=["directory", "s3"])
def files_url(request) -> str:
    """FILES_URL for each backend: unset (DATA_DIR/files), or a fresh bucket on moto's server."""
    if request.param == "directory":
        return ""
    return f"s3://{request.getfixturevalue('s3_bucket')}/podrelay"


def test_each_backend_keeps_lists_and_removes_a_jobs_files(files_url, tmp_path):
    store = open_store(files_url, str(tmp_path))
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    stored = store.put(file_key("job-a", "out-0"), data, "image/png")
    streamed = store.put(file_key("job-a", "in-audioUrl.mp3"), io.BytesIO(b"ID3" + data[:1000]), "audio/mpeg")
    store.put(file_key("job-b", "out-0"), b"other", "image/png")
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert streamed.size == 1003
    with store.open(stored.key) as body:
        assert body.read() == data
    assert sorted(job_id for job_id, _ in store.groups()) == ["job-a", "job-b"]
    assert all(time.time() - written < 300 for _, written in store.groups())
    url = store.fetch_url(streamed.key, 600)
    if isinstance(store, S3Store):  # a presigned URL a worker fetches without credentials
        assert requests.get(url, timeout=10).content == b"ID3" + data[:1000]
    else:
        assert url is None  # a directory's files reach a worker through podrelay's signed URL
    store.delete_group("job-a")
    with pytest.raises(FileMissing):
        store.open(stored.key)
    assert [job_id for job_id, _ in store.groups()] == ["job-b"]
    with pytest.raises(ValueError):
        file_key("../etc", "passwd")


def test_a_large_callback_is_parked_in_the_store_and_read_back(tmp_path):
    store = DirectoryStore(str(tmp_path / "files"))
    small = {"id": "rp-1", "status": "COMPLETED", "output": {"text": "hi"}}
    assert results.parked(store, "job-c", small, json.dumps(small).encode()) == small
    large = {"id": "rp-2", "status": "COMPLETED", "output": {"images": ["A" * 100_000]}}
    kept = results.parked(store, "job-c", large, json.dumps(large).encode())
    assert kept == {"status": "COMPLETED", "id": "rp-2", "parked": "job-c/callback.json"}
    assert results.unparked(store, kept) == large and results.unparked(store, small) == small


def test_the_sweep_removes_only_files_whose_job_is_gone_and_runs_once_per_interval(files_url, tmp_path, redis_url):
    conn = redis.Redis.from_url(redis_url)
    store = open_store(files_url, str(tmp_path))
    for job_id in ("kept", "expired"):
        store.put(file_key(job_id, "out-0"), b"x", "image/png")
    conn.hset(JOB.format("kept"), "status", "completed")

    def existing(job_ids: list[str]) -> set[str]:
        return {j for j in job_ids if conn.exists(JOB.format(j))}

    assert sweep(store, existing, conn, interval=60, grace=3600) == 0  # both too young to judge
    conn.delete(LOCK)
    assert sweep(store, existing, conn, interval=60, grace=0) == 1
    assert [job_id for job_id, _ in store.groups()] == ["kept"]
    store.put(file_key("expired", "out-0"), b"x", "image/png")
    assert sweep(store, existing, conn, interval=60, grace=0) is None  # another sweep ran this interval
    assert sorted(job_id for job_id, _ in store.groups()) == ["expired", "kept"]


def test_file_results_live_in_the_store_not_redis_and_download_byte_identical(make_stack, emulator, files_url):
    stack = make_stack(files_url=files_url)
    images = [PNG_HEADER + os.urandom(1_500_000) for _ in range(4)]  # 4 x 1.5 MB, 8 MB as base64
    emulator.steer(stack.settings.endpoints["IMAGES"], {"output": {"images": [base64.b64encode(i).decode() for i in images]}})
    job_id = stack.enqueue("/images/generations", {"prompt": "four lighthouses", "n": 4})["id"]
    job = stack.wait_final([job_id], timeout=60)[job_id]
    assert job["status"] == "completed", job
    for index, (item, image) in enumerate(zip(job["result"]["data"], images, strict=True)):
        assert item["bytes"] == len(image) and item["sha256"] == hashlib.sha256(image).hexdigest()
        assert requests.get(item["url"], timeout=30).content == image  # the signed link, no key
        keyed = stack.http.get(f"{stack.base_url}/v1/jobs/{job_id}/download", params={"index": index}, timeout=30)
        assert keyed.content == image and keyed.headers["Content-Type"] == "image/png"
    record = stack.redis.memory_usage(JOB.format(job_id), samples=0)  # every field counted, not estimated
    assert record < 4096, f"the job record holds {record} bytes"
    assert [group for group, _ in stack.resources.files.groups()] == [job_id]
    # It ended by RunPod's callback (no poll until 60 s), whose 8 MB body waited in the store, not on the record.
    assert stack.redis.hget(JOB.format(job_id), "polls") in (None, b"0")
    with pytest.raises(FileMissing):  # and went once applied
        stack.resources.files.open(f"{job_id}/callback.json")
    client = OpenAI(api_key=stack.key, base_url=f"{stack.base_url}/openai/v1", timeout=60, max_retries=0)
    emulator.steer(stack.settings.endpoints["IMAGES"], {"output": {"images": [base64.b64encode(images[0]).decode()]}})
    answer = client.images.generate(prompt="one lighthouse", n=1)  # OpenAI's b64_json, read back from the store
    assert base64.b64decode(answer.data[0].b64_json) == images[0]


def test_a_large_transcription_upload_reaches_the_worker_as_a_url_it_fetches(make_stack, emulator, files_url):
    endpoint = "ep-files-whisper"
    emulator.workers[endpoint] = "worker-faster_whisper"
    stack = make_stack(
        files_url=files_url, endpoints={"TRANSCRIBE": endpoint}, runpod_workers={"TRANSCRIBE": "worker-faster_whisper"}
    )
    audio = b"ID3" + os.urandom(15 * 1024 * 1024)  # 15 MB: over RunPod's 10 MB /run body as base64
    client = OpenAI(api_key=stack.key, base_url=f"{stack.base_url}/openai/v1", timeout=120, max_retries=0)
    text = client.audio.transcriptions.create(model="whisper-1", file=("call.mp3", audio, "audio/mpeg")).text
    job = stack.http.get(f"{stack.base_url}/v1/jobs", params={"surface": "transcribe"}, timeout=10).json()["data"][0]
    sent = next(j for j in emulator.jobs.values() if j.endpoint_id == endpoint).input
    assert "audio_base64" not in sent and sent["audio"].endswith(".mp3")
    assert (sent["audio"], len(audio)) in emulator.fetched  # the worker downloaded every byte
    assert text.startswith("Transcript of") and job["status"] == "completed"
    assert [group for group, _ in stack.resources.files.groups()] == [job["id"]]
    stored = stack.redis.hget(JOB.format(job["id"]), "input")
    assert len(stored) < 2048  # the job keeps the URL, not 20 MB of base64


def test_a_large_image_upload_is_upscaled_from_its_url(make_stack, emulator, files_url):
    endpoint = "ep-files-esrgan"
    emulator.workers[endpoint] = "worker-esrgan"
    stack = make_stack(files_url=files_url, endpoints={"UPSCALE": endpoint}, runpod_workers={"UPSCALE": "worker-esrgan"})
    image = PNG_HEADER + os.urandom(10 * 1024 * 1024)
    body = {"image": "data:image/png;base64," + base64.b64encode(image).decode(), "scale": 2}
    answer = stack.http.post(f"{stack.base_url}/v1/images/upscale", json=body, timeout=60)  # 13 MB of JSON
    assert answer.status_code == 202, answer.text
    job = stack.wait_final([answer.json()["id"]], timeout=60)[answer.json()["id"]]
    assert job["status"] == "completed", job
    sent = next(j for j in emulator.jobs.values() if j.endpoint_id == endpoint).input
    assert (sent["data_url"], len(image)) in emulator.fetched and sent["data_url"].endswith(".png")
    download = stack.http.get(f"{stack.base_url}/v1/jobs/{job['id']}/download", timeout=10)
    assert download.content.startswith(PNG_HEADER)  # the upscaled file, from the worker's bucket


def test_a_small_upload_stays_inline(make_stack, emulator):
    endpoint = "ep-files-whisper-small"
    emulator.workers[endpoint] = "worker-faster_whisper"
    stack = make_stack(endpoints={"TRANSCRIBE": endpoint}, runpod_workers={"TRANSCRIBE": "worker-faster_whisper"})
    audio = b"ID3" + os.urandom(2000)
    answer = stack.enqueue("/audio/transcriptions", {"audioUrl": "data:audio/mpeg;base64," + base64.b64encode(audio).decode()})
    job = stack.wait_final([answer["id"]])[answer["id"]]
    assert job["status"] == "completed", job
    sent = next(j for j in emulator.jobs.values() if j.endpoint_id == endpoint).input
    assert base64.b64decode(sent["audio_base64"]) == audio and "audio" not in sent
    assert list(stack.resources.files.groups()) == []


def test_a_large_upload_with_nowhere_to_fetch_it_from_is_413_saying_what_to_set(make_stack, emulator):
    stack = make_stack(callbacks=False, upload_max_bytes=4 * 1024 * 1024)  # no PUBLIC_BASE_URL, no bucket
    audio = b"ID3" + os.urandom(2 * 1024 * 1024)
    data_uri = "data:audio/mpeg;base64," + base64.b64encode(audio).decode()
    answer = stack.http.post(f"{stack.base_url}/v1/audio/transcriptions", json={"audioUrl": data_uri}, timeout=30)
    assert answer.status_code == 413 and answer.json()["error"]["param"] == "audioUrl"
    assert "FILES_URL" in answer.json()["error"]["message"] and "PUBLIC_BASE_URL" in answer.json()["error"]["message"]
    too_big = stack.http.post(
        f"{stack.base_url}/v1/audio/transcriptions", json={"audioUrl": data_uri + "A" * (4 * 1024 * 1024)}, timeout=30
    )
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"  # UPLOAD_MAX_BYTES
    assert list(stack.resources.files.groups()) == []  # nothing kept of a refused request
    assert stack.http.get(f"{stack.base_url}/v1/jobs", timeout=10).json()["data"] == []


def test_an_upload_link_is_signed_and_names_its_file(make_stack, emulator):
    endpoint = "ep-files-esrgan-link"
    emulator.workers[endpoint] = "worker-esrgan"
    stack = make_stack(endpoints={"UPSCALE": endpoint}, runpod_workers={"UPSCALE": "worker-esrgan"})
    image = PNG_HEADER + b"small"
    answer = stack.enqueue("/images/upscale", {"image": "data:image/png;base64," + base64.b64encode(image).decode()})
    stack.wait_final([answer["id"]])
    url = next(j for j in emulator.jobs.values() if j.endpoint_id == endpoint).input["data_url"]
    fetched = requests.get(url, timeout=10)  # what the worker's rp_download does: no key
    assert fetched.content == image and fetched.headers["Content-Type"] == "image/png"
    token, name = url.rsplit("/", 2)[1:]
    assert requests.get(url.replace(name, "other.png"), timeout=10).status_code == 403
    assert requests.get(url.replace(token, token[:-2] + "xx"), timeout=10).status_code == 403


def test_listing_reads_neither_inputs_nor_provider_payloads(make_stack):
    stack = make_stack()
    job_id = stack.enqueue("/chat/completions", {"messages": [{"role": "user", "content": "x" * 50_000}]})["id"]
    stack.wait_final([job_id])
    full = stack.resources.jobs.get(job_id)
    jobs, _ = stack.resources.jobs.list_for_key(full.key_id, 10, None, None, None)
    assert [j.id for j in jobs] == [job_id] and jobs[0].input == {}  # the 50 KB input was not read
    assert full.input["messages"] and jobs[0].result == full.result
