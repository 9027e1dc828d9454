"""Idempotency-Key on POST: replayed byte for byte, 422 for another request, 409 while in progress."""

from __future__ import annotations

import threading
import time

from app import create_app
from integration.accounts.keys import _cache as auth_cache
from integration.accounts.keys import create_key, set_limits
from integration.resources import of
from tests.support import make_settings

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def _jobs(client, auth) -> list[dict]:
    return client.get("/v1/jobs", headers=auth).get_json()["data"]


def test_retried_post_replays_the_first_answer_byte_for_byte_and_creates_one_job(client, auth):
    headers = {**auth, "Idempotency-Key": "order-7731"}
    first = client.post("/v1/chat/completions", json=CHAT, headers=headers)
    again = client.post("/v1/chat/completions", json=CHAT, headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert [j["id"] for j in _jobs(client, auth)] == [first.get_json()["id"]]


def test_same_key_with_another_body_or_route_is_422(client, auth):
    headers = {**auth, "Idempotency-Key": "k-1"}
    assert client.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 202
    other_body = client.post("/v1/chat/completions", json={**CHAT, "temperature": 1}, headers=headers)
    other_route = client.post("/v1/embeddings", json={"input": "hi"}, headers=headers)
    for answer in (other_body, other_route):
        assert answer.status_code == 422
        assert answer.get_json()["error"]["code"] == "idempotency_key_reused"
        assert answer.get_json()["error"]["param"] == "Idempotency-Key"
    assert len(_jobs(client, auth)) == 1


def test_same_key_while_the_first_request_is_still_answered_is_409(client, auth, app):
    headers = {**auth, "Idempotency-Key": "slow-1", "Prefer": "wait=2"}  # no worker: the job stays queued
    first: list = []
    holder = threading.Thread(target=lambda: first.append(client.post("/v1/chat/completions", json=CHAT, headers=headers)))
    holder.start()
    time.sleep(0.5)
    busy = client.post("/v1/chat/completions", json=CHAT, headers=headers)
    claims = list(of(app).redis.scan_iter("pr:idem:*"))
    # The claim lasts as long as the request may be held (2 s) plus a margin, so if the
    # process answering it died, a retry would be refused for half a minute, not minutes.
    assert len(claims) == 1 and 0 < of(app).redis.ttl(claims[0]) <= 32
    assert busy.status_code == 409
    assert busy.get_json()["error"]["code"] == "idempotency_key_in_use"
    assert busy.headers["Retry-After"] == "1"
    holder.join()

    replay = client.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert replay.status_code == first[0].status_code == 202
    assert replay.get_data() == first[0].get_data()
    assert replay.headers["Preference-Applied"] == "wait=2"


def test_keys_are_per_api_key(client, auth, app):
    _, other = create_key(of(app).redis, "other")
    other_auth = {"Authorization": f"Bearer {other}"}
    mine = client.post("/v1/chat/completions", json=CHAT, headers={**auth, "Idempotency-Key": "shared"})
    theirs = client.post("/v1/chat/completions", json=CHAT, headers={**other_auth, "Idempotency-Key": "shared"})
    assert theirs.status_code == 202 and "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["id"] != mine.get_json()["id"]


def test_a_validation_error_is_replayed_and_a_refusal_by_limits_is_not(client, auth, app):
    headers = {**auth, "Idempotency-Key": "bad-1"}
    bad = client.post("/v1/chat/completions", json={"messages": []}, headers=headers)
    assert bad.status_code == 400
    assert client.post("/v1/chat/completions", json={"messages": []}, headers=headers).get_data() == bad.get_data()

    resources = of(app)
    key, limited = create_key(resources.redis, "limited")
    set_limits(resources.redis, key.id, budget="0")
    limited_headers = {"Authorization": f"Bearer {limited}", "Idempotency-Key": "paid-1"}
    assert client.post("/v1/chat/completions", json=CHAT, headers=limited_headers).status_code == 402
    set_limits(resources.redis, key.id, budget="unlimited")
    auth_cache.clear()  # limits apply within the key cache's 5 s; the test does not wait them out
    assert client.post("/v1/chat/completions", json=CHAT, headers=limited_headers).status_code == 202


def test_webhook_subscription_created_twice_with_one_key_is_one_subscription(redis_url, emulator):
    app = create_app(make_settings(redis_url, emulator.base_url, webhook_allow_private=True))
    client = app.test_client()
    _, secret = create_key(of(app).redis, "hooks")
    auth = {"Authorization": f"Bearer {secret}"}
    headers = {**auth, "Idempotency-Key": "sub-1"}
    body = {"url": "http://127.0.0.1:9/podrelay"}
    first = client.post("/v1/webhooks", json=body, headers=headers)
    again = client.post("/v1/webhooks", json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    assert again.get_data() == first.get_data()
    assert len(client.get("/v1/webhooks", headers=auth).get_json()["data"]) == 1


def test_malformed_idempotency_key_is_400_naming_the_header(client, auth):
    for key in ("x" * 256, "has space", "tab\tkey"):
        answer = client.post("/v1/chat/completions", json=CHAT, headers={**auth, "Idempotency-Key": key})
        assert answer.status_code == 400
        assert answer.get_json()["error"]["param"] == "Idempotency-Key"
    assert _jobs(client, auth) == []
