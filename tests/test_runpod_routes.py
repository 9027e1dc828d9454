"""The RunPod direct routes against the emulator, through a live podrelay."""

from __future__ import annotations

import requests

from integration.accounts.keys import create_key, set_limits

INPUT = {"messages": [{"role": "user", "content": "hi"}]}


def call(stack, method: str, path: str, **kwargs):
    return stack.http.request(method, f"{stack.base_url}/v1/runpod{path}", timeout=30, **kwargs)


def test_run_answers_runpods_id_and_the_job_is_tracked_with_webhooks(make_stack, receivers):
    stack = make_stack()
    hook = receivers()
    answer = call(stack, "POST", "/chat/run", json={"input": INPUT, "webhook_url": hook.url})
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "IN_QUEUE" and body["id"].endswith("-u1")  # RunPod's id
    job = stack.wait_final([body["podrelay_job_id"]])[body["podrelay_job_id"]]
    assert job["status"] == "completed" and job["runpod"]["id"] == body["id"]
    assert job["result"]["choices"][0]["message"]["content"] == "Echo: hi"
    assert hook.wait_for(1)[0]["headers"]["webhook-id"].startswith("msg_")
    status = call(stack, "GET", f"/chat/status/{body['id']}").json()
    assert status["status"] == "COMPLETED" and status["output"][0]["choices"][0]["tokens"] == ["Echo: hi"]


def test_runsync_waits_and_records_the_job(make_stack):
    stack = make_stack(callbacks=False)
    answer = call(
        stack, "POST", "/embeddings/runsync", params={"wait": 5000}, json={"input": {"model": "m", "input": "x"}}
    ).json()
    assert answer["status"] == "COMPLETED" and answer["output"]["data"][0]["embedding"]
    job = stack.job(answer["podrelay_job_id"])
    assert job["status"] == "completed" and job["result"]["object"] == "list"
    bad = call(stack, "POST", "/embeddings/runsync", params={"wait": 10}, json={"input": {}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "wait"


def test_stream_cancel_and_retry(make_stack, emulator):
    stack = make_stack()
    slow = call(stack, "POST", "/chat/run", json={"input": {**INPUT, "emulate": {"delay": 30}}}).json()
    assert call(stack, "GET", f"/chat/stream/{slow['id']}").json()["status"] in ("IN_QUEUE", "IN_PROGRESS")
    cancelled = call(stack, "POST", f"/chat/cancel/{slow['id']}").json()
    assert cancelled == {"id": slow["id"], "status": "CANCELLED"}
    assert stack.job(slow["podrelay_job_id"])["status"] == "cancelled"

    failing = call(stack, "POST", "/chat/run", json={"input": {**INPUT, "emulate": {"outcome": "FAILED"}}}).json()
    assert stack.wait_final([failing["podrelay_job_id"]])[failing["podrelay_job_id"]]["status"] == "failed"
    retried = call(stack, "POST", f"/chat/retry/{failing['id']}").json()
    assert retried["status"] == "IN_QUEUE"
    job = stack.wait_final([failing["podrelay_job_id"]])[failing["podrelay_job_id"]]
    assert job["status"] == "completed"  # the emulator's retry succeeds


def test_health_purge_and_endpoint_override(make_stack, emulator):
    stack = make_stack(workers=0)
    operator, admin_key = create_key(stack.redis, "operator", admin=True)
    set_limits(stack.redis, operator.id, rpm="unlimited")
    admin = {"Authorization": f"Bearer {admin_key}"}
    queued = call(
        stack,
        "POST",
        "/images/run",
        params={"endpoint_id": "ep-other"},
        json={"input": {"prompt": "x", "emulate": {"queue": 30}}},
        headers=admin,
    )
    assert queued.status_code == 200
    assert emulator.jobs[queued.json()["id"]].endpoint_id == "ep-other"
    health = call(stack, "GET", "/images/health", params={"endpoint_id": "ep-other"}, headers=admin).json()
    assert health["jobs"]["inQueue"] >= 1
    purged = call(stack, "POST", "/images/purge-queue", params={"endpoint_id": "ep-other"}, headers=admin).json()
    assert purged["removed"] >= 1
    # A key that is not an admin's: configured endpoints only, no purge, no other keys' job counts.
    other = call(stack, "POST", "/images/run", params={"endpoint_id": "ep-other"}, json={"input": {"prompt": "x"}})
    assert other.status_code == 403 and other.json()["error"]["param"] == "endpoint_id"
    assert call(stack, "POST", "/images/purge-queue").status_code == 403
    assert set(call(stack, "GET", "/images/health").json()) == {"workers"}
    bad = call(stack, "GET", "/images/health", params={"endpoint_id": "../../x"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "endpoint_id"
    assert call(stack, "GET", "/nope/health").status_code == 404


def test_another_keys_runpod_jobs_are_refused(make_stack):
    stack = make_stack()
    mine = call(stack, "POST", "/chat/run", json={"input": INPUT}).json()
    _, other = create_key(stack.redis, "other")
    headers = {"Authorization": f"Bearer {other}"}
    for method, operation in (("GET", "status"), ("GET", "stream"), ("POST", "cancel"), ("POST", "retry")):
        answer = call(stack, method, f"/chat/{operation}/{mine['id']}", headers=headers)
        assert answer.status_code == 404, operation
    assert call(stack, "GET", "/chat/status/not-a-job").status_code == 404


def test_runpod_errors_become_provider_errors(make_stack, emulator):
    stack = make_stack(workers=0)
    requests.post(f"{emulator.base_url}/_emulator/faults", json={"run": [503, 503, 503]}, timeout=5)
    answer = call(stack, "POST", "/chat/run", json={"input": INPUT})
    assert answer.status_code == 502 and answer.json()["error"]["code"] == "provider_error"
    assert call(stack, "POST", "/chat/run", json={"nope": 1}).json()["error"]["param"] == "input"
