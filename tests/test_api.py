"""The HTTP API on a real Redis, without workers: auth, validation, envelopes, jobs API."""

from __future__ import annotations

import json
import time

import pytest
import redis

from app import create_app
from integration.accounts.keys import create_key
from integration.config import Settings
from integration.jobs.store import PENDING
from integration.readiness import beat
from integration.resources import of

CHAT = {"messages": [{"role": "user", "content": "Summarize this document in 5 bullets."}]}


def post(client, route, body, headers):
    return client.post(f"/v1{route}", data=json.dumps(body), headers={**headers, "Content-Type": "application/json"})


def assert_envelope(response, status, code, param=None):
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["param"] == param
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-Id"]
    return error


# -- accept ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "route, body, object_name, surface, model",
    [
        ("/chat/completions", CHAT, "chat.completion.enqueue", "chat", "Llama3_8B_Instruct"),
        ("/images/generations", {"prompt": "a cat"}, "image.generation.enqueue", "images", "Flux1schnell"),
        (
            "/audio/transcriptions",
            {"audioUrl": "https://cdn.example.com/a.mp3"},
            "audio.transcription.enqueue",
            "transcribe",
            "WhisperLargeV3",
        ),
        ("/embeddings", {"input": "cold starts"}, "embedding.enqueue", "embeddings", "BGE_Large"),
    ],
)
def test_enqueue_answers_202_with_enqueue_object_and_location(client, auth, app, route, body, object_name, surface, model):
    response = post(client, route, body, auth)
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["object"] == object_name
    assert answer["status"] == "queued"
    assert answer["surface"] == surface
    assert answer["model"] == model
    assert answer["endpoint_id"] == f"ep-{surface}"
    assert answer["runpod"] == {"id": None, "status": None}
    assert response.headers["Location"] == f"/v1/jobs/{answer['id']}"
    conn = of(app).redis
    assert conn.zscore(PENDING, answer["id"]) == 0  # due at once: its submit order


def test_extra_keys_pass_through_to_worker_input(client, auth, app):
    body = {
        **CHAT,
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "repetition_penalty": 1.1,
        "webhook_url": "https://93.184.215.14/hooks",
    }
    job_id = post(client, "/chat/completions", body, auth).get_json()["id"]
    job = of(app).jobs.get(job_id)
    # vLLM's sampling parameters go where worker-vllm's legacy input reads them; others pass through.
    assert job.input["sampling_params"] == {"temperature": 0.2, "top_p": 0.9, "seed": 7}
    assert job.input["repetition_penalty"] == 1.1
    assert "webhook_url" not in job.input
    assert job.webhook_url == "https://93.184.215.14/hooks"


def test_missing_endpoint_is_400_missing_endpoint_id(redis_url, emulator):
    settings = Settings(redis_url=redis_url, endpoints={}, environment="test", secret_key="s")
    app = create_app(settings)
    _, key = create_key(of(app).redis, "k")
    response = post(app.test_client(), "/chat/completions", CHAT, {"Authorization": f"Bearer {key}"})
    error = assert_envelope(response, 400, "missing_endpoint_id")
    assert (
        error["message"]
        == "No RunPod endpoint configured for surface chat: set RUNPOD_ENDPOINT_CHAT (or RUNPOD_ENDPOINT_CHAT__<MODEL>)"
    )


def test_per_model_endpoint_overrides_surface_endpoint(redis_url, emulator):
    settings = Settings(
        redis_url=redis_url,
        endpoints={"IMAGES": "ep-img", "IMAGES__REALESRGAN_X4": "ep-upscale"},
        environment="test",
        secret_key="s",
    )
    app = create_app(settings)
    _, key = create_key(of(app).redis, "k")
    headers = {"Authorization": f"Bearer {key}"}
    client = app.test_client()
    assert (
        post(client, "/images/generations", {"prompt": "x", "model": "RealESRGAN_x4"}, headers).get_json()["endpoint_id"]
        == "ep-upscale"
    )
    assert post(client, "/images/generations", {"prompt": "x"}, headers).get_json()["endpoint_id"] == "ep-img"


def test_unknown_model_is_400_routing_error(client, auth):
    assert_envelope(post(client, "/images/generations", {"prompt": "x", "model": "nope"}, auth), 400, "routing_error", "model")


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "route, body, param",
    [
        ("/chat/completions", {}, "messages"),
        ("/chat/completions", {"messages": []}, "messages"),
        ("/chat/completions", {"messages": "hi"}, "messages"),
        ("/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ("/chat/completions", {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ("/chat/completions", {**CHAT, "temperature": 2.5}, "temperature"),
        ("/chat/completions", {**CHAT, "temperature": "hot"}, "temperature"),
        ("/chat/completions", {**CHAT, "max_tokens": 0}, "max_tokens"),
        ("/chat/completions", {**CHAT, "max_tokens": 8193}, "max_tokens"),
        ("/chat/completions", {**CHAT, "max_tokens": "10"}, "max_tokens"),
        ("/chat/completions", {**CHAT, "webhook_url": "not a url"}, "webhook_url"),
        ("/chat/completions", {**CHAT, "user": ""}, "user"),
        ("/chat/completions", {**CHAT, "model": ""}, "model"),
        ("/chat/completions", {**CHAT, "policy": {"executionTimeout": 1}}, "policy.executionTimeout"),
        ("/images/generations", {"prompt": ""}, "prompt"),
        ("/images/generations", {"prompt": "x", "n": 9}, "n"),
        ("/images/generations", {"prompt": "x", "size": "big"}, "size"),
        ("/images/generations", {"prompt": "x", "response_format": "gif"}, "response_format"),
        ("/audio/transcriptions", {}, "audioUrl"),
        ("/audio/transcriptions", {"audioUrl": "file:///etc/passwd"}, "audioUrl"),
        ("/audio/transcriptions", {"audioUrl": "https://a.example.com/x.mp3", "language": "e"}, "language"),
        ("/embeddings", {"input": []}, "input"),
        ("/embeddings", {"input": ["ok", ""]}, "input"),
        ("/embeddings", {"input": "x", "dimensions": 0}, "dimensions"),
        ("/embeddings", {"input": "x", "encoding_format": "hex"}, "encoding_format"),
    ],
)
def test_bad_field_is_400_naming_it(client, auth, route, body, param):
    error = assert_envelope(post(client, route, body, auth), 400, "validation_error", param)
    assert param.split("[")[0].split(".")[0] in error["message"]


def test_invalid_json_is_400(client, auth):
    response = client.post("/v1/chat/completions", data="{nope", headers={**auth, "Content-Type": "application/json"})
    assert_envelope(response, 400, "invalid_json")


def test_json_that_is_not_an_object_is_400(client, auth):
    assert_envelope(post(client, "/chat/completions", ["a"], auth), 400, "invalid_json")


def test_wrong_content_type_is_415(client, auth):
    response = client.post("/v1/chat/completions", data="messages=hi", headers={**auth, "Content-Type": "text/plain"})
    assert_envelope(response, 415, "unsupported_media_type")


def test_body_over_limit_is_413(client, auth, app):
    big = {"messages": [{"role": "user", "content": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)}]}
    assert_envelope(post(client, "/chat/completions", big, auth), 413, "request_too_large")


def test_unknown_route_and_wrong_method_use_the_envelope(client, auth):
    assert_envelope(client.get("/v1/nothing-here", headers=auth), 404, "not_found")
    assert_envelope(client.get("/v1/chat/completions", headers=auth), 405, "method_not_allowed")


def test_redis_down_is_503_not_a_traceback(emulator):
    settings = Settings(redis_url="redis://127.0.0.1:1/0", endpoints={"CHAT": "ep"}, environment="test", secret_key="s")
    client = create_app(settings).test_client()
    response = post(client, "/chat/completions", CHAT, {"Authorization": "Bearer pr_whatever"})
    assert_envelope(response, 503, "service_unavailable")
    assert response.headers["Retry-After"] == "5"


# -- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer pr_wrong", "Basic abc", "bearer  "])
def test_missing_or_wrong_key_is_401_invalid_api_key(client, header):
    headers = {"Authorization": header} if header else {}
    assert_envelope(post(client, "/chat/completions", CHAT, headers), 401, "invalid_api_key")
    assert_envelope(client.get("/v1/jobs", headers=headers), 401, "invalid_api_key")


def test_keys_cli_creates_lists_and_revokes(app, client):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["keys", "create", "ci-bot"])
    assert created.exit_code == 0
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("pr_")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/jobs", headers=headers).status_code == 200
    listing = runner.invoke(args=["keys", "list"]).output
    assert "ci-bot" in listing and secret not in listing
    conn = of(app).redis
    stored = b"".join(k + b"".join(conn.hvals(k)) for k in conn.keys("pr:key:*"))
    assert secret.encode() not in stored  # only its hash is kept
    assert runner.invoke(args=["keys", "revoke", "ci-bot"]).exit_code == 0
    assert_envelope(client.get("/v1/jobs", headers=headers), 401, "invalid_api_key")


def test_healthz_needs_no_key(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


# -- jobs API --------------------------------------------------------------------------------


def test_another_keys_job_is_404(client, auth, app):
    job_id = post(client, "/chat/completions", CHAT, auth).get_json()["id"]
    _, other = create_key(of(app).redis, "other")
    other_headers = {"Authorization": f"Bearer {other}"}
    assert_envelope(client.get(f"/v1/jobs/{job_id}", headers=other_headers), 404, "not_found")
    assert_envelope(client.post(f"/v1/jobs/{job_id}/cancel", headers=other_headers), 404, "not_found")
    assert client.get("/v1/jobs", headers=other_headers).get_json()["data"] == []
    assert client.get(f"/v1/jobs/{job_id}", headers=auth).status_code == 200


def test_job_object_has_the_documented_fields(client, auth):
    job_id = post(client, "/embeddings", {"input": "x"}, auth).get_json()["id"]
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).get_json()
    assert set(job) == {
        "id",
        "object",
        "status",
        "surface",
        "model",
        "endpoint_id",
        "runpod",
        "created",
        "started",
        "finished",
        "result",
        "error",
        "cost",
        "progress",
    }
    assert job["object"] == "job" and job["status"] == "queued" and job["progress"] is None


def test_list_is_newest_first_filtered_and_paginated(client, auth):
    ids = [post(client, "/chat/completions", CHAT, auth).get_json()["id"] for _ in range(5)]
    ids.append(post(client, "/embeddings", {"input": "x"}, auth).get_json()["id"])
    page = client.get("/v1/jobs?limit=4", headers=auth).get_json()
    assert [j["id"] for j in page["data"]] == ids[::-1][:4]
    assert page["has_more"] is True
    rest = client.get(f"/v1/jobs?limit=4&cursor={page['next_cursor']}", headers=auth).get_json()
    assert [j["id"] for j in rest["data"]] == ids[::-1][4:]
    assert rest["has_more"] is False and rest["next_cursor"] is None
    embeddings = client.get("/v1/jobs?surface=embeddings", headers=auth).get_json()["data"]
    assert [j["id"] for j in embeddings] == [ids[-1]]
    client.post(f"/v1/jobs/{ids[0]}/cancel", headers=auth)
    cancelled = client.get("/v1/jobs?status=cancelled", headers=auth).get_json()["data"]
    assert [j["id"] for j in cancelled] == [ids[0]]


@pytest.mark.parametrize(
    "query, param", [("limit=0", "limit"), ("limit=abc", "limit"), ("status=done", "status"), ("surface=x", "surface")]
)
def test_bad_list_query_is_400(client, auth, query, param):
    assert_envelope(client.get(f"/v1/jobs?{query}", headers=auth), 400, "validation_error", param)


def test_cancel_of_queued_job_then_again_is_409(client, auth):
    job_id = post(client, "/chat/completions", CHAT, auth).get_json()["id"]
    cancelled = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    assert cancelled.get_json()["error"]["code"] == "cancelled"
    assert_envelope(client.post(f"/v1/jobs/{job_id}/cancel", headers=auth), 409, "job_not_cancellable")


# -- provider callback route -------------------------------------------------------------------


def test_callback_with_forged_token_is_refused(client, auth, app):
    job_id = post(client, "/chat/completions", CHAT, auth).get_json()["id"]
    tokens = of(app).tokens
    good = tokens.token(job_id)
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    body = {"id": "x", "status": "COMPLETED", "output": []}
    assert client.post(f"/callbacks/runpod/{forged}", json=body).status_code == 404
    assert client.post("/callbacks/runpod/" + tokens.token("not-a-job"), json=body).status_code == 404
    other_secret = type(tokens)("another-secret").token(job_id)
    assert client.post(f"/callbacks/runpod/{other_secret}", json=body).status_code == 404
    assert of(app).jobs.get(job_id).callback is None


def test_callback_is_kept_and_makes_the_job_due_now(client, auth, app):
    job_id = post(client, "/chat/completions", CHAT, auth).get_json()["id"]
    token = of(app).tokens.token(job_id)
    body = {"id": "rp-1", "status": "COMPLETED", "output": [{"choices": [{"tokens": ["hi"]}]}]}
    assert client.post(f"/callbacks/runpod/{token}", json=body).status_code == 200
    conn: redis.Redis = of(app).redis
    assert of(app).jobs.get(job_id).callback == body
    assert conn.zscore(PENDING, job_id) == 0


def test_callback_may_carry_an_output_larger_than_the_api_body_limit(client, auth, app):
    job_id = post(client, "/images/generations", {"prompt": "x"}, auth).get_json()["id"]
    token = of(app).tokens.token(job_id)
    image = "A" * (app.config["MAX_CONTENT_LENGTH"] * 3)
    body = {"id": "rp-1", "status": "COMPLETED", "output": {"images": [image]}}
    assert client.post(f"/callbacks/runpod/{token}", json=body).status_code == 200
    assert client.post("/callbacks/runpod/forged", json=body).status_code == 404  # no large body before the token checks out


def test_readyz_needs_a_live_worker_and_says_why_not(client, app):
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["status"] == "not_ready"
    assert "no worker process" in answer.get_json()["checks"]["problems"][0]
    conn = of(app).redis
    beat(conn, "host:1", now=time.time() - 120)  # long silent: does not count
    assert client.get("/readyz").status_code == 503
    beat(conn, "host:2")
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["workers"] == 1


def test_readyz_fails_on_a_backlog_and_when_redis_is_down(redis_url, emulator):
    app = create_app(
        Settings(redis_url=redis_url, endpoints={"CHAT": "ep"}, environment="test", secret_key="s", ready_max_overdue=2)
    )
    conn = of(app).redis
    beat(conn, "host:1")
    conn.zadd(PENDING, {f"job-{n}": time.time() - 600 for n in range(3)})
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 503 and "overdue" in answer.get_json()["checks"]["problems"][0]
    down = (
        create_app(Settings(redis_url="redis://127.0.0.1:1/0", environment="test", secret_key="s")).test_client().get("/readyz")
    )
    assert down.status_code == 503 and down.get_json()["checks"]["redis"].startswith("unreachable")


def test_openai_model_names_mean_the_surfaces_models_and_model_ids_are_unique(client, auth, app):
    images = client.post("/v1/images/generations", json={"prompt": "x", "model": "dall-e-3"}, headers=auth)
    assert images.status_code == 202 and images.get_json()["model"] == "Flux1schnell"
    price = client.post("/v1/embeddings/price", json={"input": "x", "model": "text-embedding-3-small"}, headers=auth)
    assert price.status_code == 200 and price.get_json()["model"] == "BGE_Large"
    ids = [m["id"] for m in client.get("/openai/v1/models", headers=auth).get_json()["data"]]
    assert len(ids) == len(set(ids))


def test_keys_cli_refuses_duplicate_names_bad_months_and_reads_zero_as_unlimited(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["keys", "create", "twin"]).exit_code == 0
    again = runner.invoke(args=["keys", "create", "twin"])
    assert again.exit_code != 0 and "a key named 'twin' exists" in again.output
    month = runner.invoke(args=["keys", "usage", "twin", "--month", "2026-13"])
    assert month.exit_code != 0 and "--month must be YYYY-MM" in month.output
    zero = runner.invoke(args=["keys", "limits", "twin", "--rpm", "0"])
    assert zero.exit_code == 0 and "unlimited requests/minute" in zero.output
