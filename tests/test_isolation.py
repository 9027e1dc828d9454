"""Every object one API key makes is invisible to another: each answers exactly like one that does not exist."""

from __future__ import annotations

import requests

from integration.accounts.keys import create_key

IMAGE = {"prompt": "a red fox", "size": "256x256", "response_format": "b64_json"}


def test_no_object_of_one_key_is_visible_or_usable_by_another(make_stack, receivers):
    stack = make_stack()
    hook = receivers()
    base = stack.base_url + "/v1"
    owner = stack.http

    job_id = owner.post(f"{base}/images/generations", json={**IMAGE, "webhook_url": hook.url}, timeout=5).json()["id"]
    subscription = owner.post(f"{base}/webhooks", json={"url": hook.url, "events": ["job.completed"]}, timeout=5).json()
    direct = owner.post(f"{base}/runpod/chat/run", json={"input": {"messages": [{"role": "user", "content": "hi"}]}}, timeout=10)
    runpod_id = direct.json()["id"]
    jobs = stack.wait_final([job_id, direct.json()["podrelay_job_id"]])
    assert {j["status"] for j in jobs.values()} == {"completed"}
    hook.wait_for(3)  # the job's webhook_url, the subscription, the direct job's ... at least three
    deliveries = owner.get(f"{base}/webhooks/deliveries", timeout=5).json()["data"]
    assert deliveries
    delivery_id = deliveries[0]["id"]
    assert owner.get(f"{base}/jobs/{job_id}/download", timeout=5).status_code == 200
    owner.post(
        f"{base}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}, headers={"Idempotency-Key": "mine"}
    )

    _, other_secret = create_key(stack.redis, "intruder")
    other = requests.Session()
    other.headers["Authorization"] = f"Bearer {other_secret}"
    refused = {
        ("GET", f"/jobs/{job_id}"),
        ("POST", f"/jobs/{job_id}/cancel"),
        ("GET", f"/jobs/{job_id}/download"),
        ("GET", f"/jobs/{job_id}/events"),
        ("GET", f"/webhooks/{subscription['id']}"),
        ("PATCH", f"/webhooks/{subscription['id']}"),
        ("DELETE", f"/webhooks/{subscription['id']}"),
        ("POST", f"/webhooks/{subscription['id']}/rotate-secret"),
        ("POST", f"/webhooks/{subscription['id']}/test"),
        ("GET", f"/webhooks/{subscription['id']}/deliveries"),
        ("GET", f"/webhooks/deliveries/{delivery_id}"),
        ("POST", f"/webhooks/deliveries/{delivery_id}/redeliver"),
        ("GET", f"/runpod/chat/status/{runpod_id}"),
        ("GET", f"/runpod/chat/stream/{runpod_id}"),
        ("POST", f"/runpod/chat/cancel/{runpod_id}"),
        ("POST", f"/runpod/chat/retry/{runpod_id}"),
    }
    for method, path in sorted(refused):
        kwargs = {"json": {"description": "mine now"}} if method == "PATCH" else {}
        answer = other.request(method, base + path, timeout=10, **kwargs)
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
        assert answer.json()["error"]["code"] == "not_found"

    assert other.get(f"{base}/jobs", timeout=5).json()["data"] == []
    assert other.get(f"{base}/webhooks", timeout=5).json()["data"] == []
    assert other.get(f"{base}/webhooks/deliveries", timeout=5).json()["data"] == []
    assert (
        other.get(f"{base}/webhooks/signing-secret", timeout=5).json()["secret"]
        != (owner.get(f"{base}/webhooks/signing-secret", timeout=5).json()["secret"])
    )
    assert other.get(f"{base}/usage", timeout=5).json()["usage"]["jobs_in_flight"] == 0
    # Another key's idempotency key is not this key's: a new job, not the owner's replay.
    mine = other.post(
        f"{base}/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}, headers={"Idempotency-Key": "mine"}
    )
    assert mine.status_code == 202 and "Idempotent-Replayed" not in mine.headers
    # The owner still sees everything, untouched.
    assert owner.get(f"{base}/webhooks/{subscription['id']}", timeout=5).json()["description"] == ""
    assert owner.get(f"{base}/jobs/{job_id}", timeout=5).json()["status"] == "completed"
