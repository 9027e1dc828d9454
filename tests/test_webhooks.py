"""Webhook deliveries end to end: loopback receivers verify every delivery with the
`standardwebhooks` reference library (never podrelay's own signer)."""

from __future__ import annotations

import json
import signal
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app import create_app
from integration.accounts.keys import create_key
from integration.resources import of
from integration.webhooks.deliveries import Delivery
from tests.support import make_settings, wait_until
from workers.deliver import Courier

CHAT = {"messages": [{"role": "user", "content": "Summarize this"}]}


def verify(secret: str, request: dict) -> dict:
    """What a subscriber does: verify the signature and timestamp, then read the event."""
    return Webhook(secret).verify(request["body"], request["headers"])


def subscribe(stack, url: str, **fields) -> dict:
    answer = stack.http.post(f"{stack.base_url}/v1/webhooks", json={"url": url, **fields}, timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()


def deliveries(stack, sub_id: str | None = None, **query) -> list[dict]:
    path = f"/v1/webhooks/{sub_id}/deliveries" if sub_id else "/v1/webhooks/deliveries"
    return stack.http.get(f"{stack.base_url}{path}", params=query, timeout=5).json()["data"]


def test_completion_reaches_webhook_url_and_subscription_signed(make_stack, receivers):
    stack = make_stack()
    hook, endpoint, failures_only = receivers(), receivers(), receivers()
    sub = subscribe(stack, endpoint.url, events=["job.completed"], description="ops")
    subscribe(stack, failures_only.url, events=["job.failed"])
    job_id = stack.enqueue("/chat/completions", {**CHAT, "webhook_url": hook.url})["id"]
    job = stack.wait_final([job_id])[job_id]

    signing_secret = stack.http.get(f"{stack.base_url}/v1/webhooks/signing-secret", timeout=5).json()["secret"]
    via_url = verify(signing_secret, hook.wait_for(1)[0])
    via_sub = verify(sub["secret"], endpoint.wait_for(1)[0])
    for event in (via_url, via_sub):
        assert event["type"] == "job.completed"
        assert event["timestamp"].endswith("Z")
        assert event["data"] == job  # the job as GET /v1/jobs/{id} shows it
    assert hook.requests[0]["headers"]["webhook-id"] == endpoint.requests[0]["headers"]["webhook-id"]
    time.sleep(0.5)
    assert failures_only.requests == []  # it subscribed to job.failed only
    with pytest.raises(WebhookVerificationError):
        verify(sub["secret"], hook.requests[0])  # each target has its own secret


def test_webhook_events_choose_what_a_requests_webhook_url_gets(make_stack, slow_emulator, receivers):
    # Polled while it runs, so the job is seen running: job.started, then job.completed.
    stack = make_stack(callbacks=False, runpod_api_base=f"{slow_emulator(1.5).base_url}/v2")
    everything, final_only = receivers(), receivers()
    first = stack.enqueue("/chat/completions", {**CHAT, "webhook_url": everything.url})["id"]
    body = {**CHAT, "webhook_url": final_only.url, "webhook_events": ["job.completed", "job.failed"]}
    second = stack.enqueue("/chat/completions", body)["id"]
    stack.wait_final([first, second])
    assert [json.loads(r["body"])["type"] for r in everything.wait_for(2)] == ["job.started", "job.completed"]
    assert [json.loads(r["body"])["type"] for r in final_only.wait_for(1)] == ["job.completed"]
    time.sleep(1.0)
    assert len(final_only.requests) == 1  # its job.started went nowhere
    refused = stack.http.post(f"{stack.base_url}/v1/chat/completions", json={**CHAT, "webhook_events": ["job.done"]}, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "webhook_events[0]"


def test_failed_attempts_are_retried_with_the_same_webhook_id(make_stack, receivers):
    stack = make_stack()
    endpoint = receivers(plan=[500, 503])
    sub = subscribe(stack, endpoint.url)
    job_id = stack.enqueue("/embeddings", {"input": "x"})["id"]
    stack.wait_final([job_id])
    requests_seen = endpoint.wait_for(3)
    assert len({r["headers"]["webhook-id"] for r in requests_seen}) == 1
    assert all(verify(sub["secret"], r)["data"]["id"] == job_id for r in requests_seen)
    delivery = wait_until(lambda: [d for d in deliveries(stack, sub["id"]) if d["status"] == "delivered"])[0]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 204]
    assert all(a["latency_ms"] is not None for a in delivery["attempts"])
    assert delivery["attempts"][0]["response_body"] == "ok"


def test_retry_after_from_the_receiver_is_honoured(make_stack, receivers):
    stack = make_stack()
    endpoint = receivers(plan=[(503, {"Retry-After": "2"}, 0)])
    subscribe(stack, endpoint.url)
    stack.wait_final([stack.enqueue("/embeddings", {"input": "x"})["id"]])
    first, second = endpoint.wait_for(2, timeout=20)[:2]
    assert second["at"] - first["at"] >= 1.9  # the schedule alone would wait 0.3 s


def test_410_disables_the_subscription(make_stack, receivers):
    stack = make_stack()
    endpoint = receivers(plan=[410])
    sub = subscribe(stack, endpoint.url)
    stack.wait_final([stack.enqueue("/embeddings", {"input": "x"})["id"]])
    endpoint.wait_for(1)
    state = wait_until(
        lambda: (s := stack.http.get(f"{stack.base_url}/v1/webhooks/{sub['id']}").json())["status"] == "disabled" and s
    )
    assert "410" in state["disabled_reason"]
    stack.wait_final([stack.enqueue("/embeddings", {"input": "y"})["id"]])
    time.sleep(1.0)
    assert len(endpoint.requests) == 1  # nothing more is sent to it
    assert stack.http.patch(f"{stack.base_url}/v1/webhooks/{sub['id']}", json={"enabled": True}).json()["status"] == "enabled"


def test_redirects_are_not_followed(make_stack, receivers):
    stack = make_stack()
    elsewhere = receivers()
    endpoint = receivers(plan=[(302, {"Location": elsewhere.url}, 0)] * 4)
    sub = subscribe(stack, endpoint.url)
    stack.wait_final([stack.enqueue("/embeddings", {"input": "x"})["id"]])
    endpoint.wait_for(4)
    dead = wait_until(lambda: deliveries(stack, sub["id"], status="dead"))
    assert [a["status_code"] for a in dead[0]["attempts"]] == [302, 302, 302, 302]
    assert elsewhere.requests == []


def test_during_a_rotation_both_secrets_verify(make_stack, receivers):
    stack = make_stack()
    endpoint = receivers()
    sub = subscribe(stack, endpoint.url)
    rotated = stack.http.post(f"{stack.base_url}/v1/webhooks/{sub['id']}/rotate-secret", timeout=5).json()
    assert rotated["secret"] != sub["secret"] and rotated["secret"].startswith("whsec_")
    answer = stack.http.post(f"{stack.base_url}/v1/webhooks/{sub['id']}/test", timeout=5)
    assert answer.status_code == 202
    request = endpoint.wait_for(1)[0]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    assert verify(sub["secret"], request)["type"] == "webhook.test"
    assert verify(rotated["secret"], request)["data"]["webhook_id"] == sub["id"]


def test_key_signing_secret_rotation_signs_with_both(make_stack, receivers):
    stack = make_stack()
    hook = receivers()
    old = stack.http.get(f"{stack.base_url}/v1/webhooks/signing-secret").json()["secret"]
    new = stack.http.post(f"{stack.base_url}/v1/webhooks/signing-secret/rotate").json()["secret"]
    assert new != old
    stack.wait_final([stack.enqueue("/embeddings", {"input": "x", "webhook_url": hook.url})["id"]])
    request = hook.wait_for(1)[0]
    assert verify(old, request)["type"] == "job.completed"
    assert verify(new, request)["type"] == "job.completed"


def test_a_worker_killed_mid_delivery_still_delivers(make_stack, receivers):
    stack = make_stack()
    endpoint = receivers(plan=[(200, {}, 5.0)])  # the first answer comes too late: the worker is dead by then
    sub = subscribe(stack, endpoint.url)
    job_id = stack.enqueue("/embeddings", {"input": "x"})["id"]
    endpoint.wait_for(1)
    stack.kill_workers(signal.SIGKILL)
    stack.start_worker()
    second = endpoint.wait_for(2, timeout=20)[1]
    assert second["headers"]["webhook-id"] == endpoint.requests[0]["headers"]["webhook-id"]
    assert verify(sub["secret"], second)["data"]["id"] == job_id
    assert wait_until(lambda: deliveries(stack, sub["id"], status="delivered"))


def test_exhausted_deliveries_are_dead_lettered_and_redeliver(make_stack, receivers):
    stack = make_stack()
    endpoint = receivers(plan=[500, 500, 500, 500])
    sub = subscribe(stack, endpoint.url)
    stack.wait_final([stack.enqueue("/embeddings", {"input": "x"})["id"]])
    dead = wait_until(lambda: deliveries(stack, status="dead"))
    assert len(dead) == 1 and dead[0]["attempt_count"] == 4
    assert dead[0]["webhook_id"] == sub["id"]
    answer = stack.http.post(f"{stack.base_url}/v1/webhooks/deliveries/{dead[0]['id']}/redeliver")
    assert answer.status_code == 202 and answer.json()["status"] == "pending"
    fifth = endpoint.wait_for(5)[4]
    assert fifth["headers"]["webhook-id"] == dead[0]["event_id"]
    assert verify(sub["secret"], fifth)["type"] == "job.completed"
    assert wait_until(lambda: deliveries(stack, status="delivered"))


def test_recover_sends_again_exactly_the_failed_deliveries_since_a_time(make_stack, receivers):
    stack = make_stack()
    endpoint = receivers(plan=[500] * 8)  # the first two events' four attempts each fail; then 204s
    sub = subscribe(stack, endpoint.url, events=["job.completed"])
    stack.wait_final([stack.enqueue("/embeddings", {"input": "before"})["id"]])
    wait_until(lambda: len(deliveries(stack, sub["id"], status="dead")) == 1)
    time.sleep(1.1)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 0.5))
    stack.wait_final([stack.enqueue("/embeddings", {"input": "after"})["id"]])
    wait_until(lambda: len(deliveries(stack, sub["id"], status="dead")) == 2)
    stack.wait_final([stack.enqueue("/embeddings", {"input": "fine"})["id"]])
    wait_until(lambda: len(deliveries(stack, sub["id"], status="delivered")) == 1)
    dead = {d["id"]: d for d in deliveries(stack, sub["id"], status="dead")}
    answer = stack.http.post(f"{stack.base_url}/v1/webhooks/{sub['id']}/recover", json={"since": since}, timeout=10)
    assert answer.status_code == 202 and answer.json()["recovered"] == 1, answer.text
    [again] = answer.json()["delivery_ids"]
    assert again in dead and dead[again]["job_id"] != min(dead.values(), key=lambda d: d["created"])["job_id"]
    received = endpoint.wait_for(10)  # 8 failed attempts, the fine one, and the recovered one
    assert verify(sub["secret"], received[9])["data"]["id"] == dead[again]["job_id"]
    assert wait_until(lambda: len(deliveries(stack, sub["id"], status="delivered")) == 2)
    assert len(deliveries(stack, sub["id"], status="dead")) == 1  # the one before `since` stays dead
    bad = stack.http.post(f"{stack.base_url}/v1/webhooks/{sub['id']}/recover", json={"since": "yesterday"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "since"


def test_operational_events_go_to_the_subscriptions_that_ask_for_them(make_stack, receivers):
    stack = make_stack()
    failing, gone, ops = receivers(plan=[500, 500, 500, 500]), receivers(plan=[410]), receivers()
    subscribe(stack, failing.url, events=["job.completed"])
    doomed = subscribe(stack, gone.url, events=["job.completed"])
    watcher = subscribe(stack, ops.url, events=["delivery.exhausted", "subscription.disabled"])
    stack.wait_final([stack.enqueue("/embeddings", {"input": "x"})["id"]])
    received = [verify(watcher["secret"], r) for r in ops.wait_for(2, timeout=30)]
    by_type = {event["type"]: event["data"] for event in received}
    assert set(by_type) == {"delivery.exhausted", "subscription.disabled"}
    [dead] = deliveries(stack, status="dead")
    assert by_type["delivery.exhausted"]["delivery_id"] == dead["id"] and by_type["delivery.exhausted"]["attempts"] == 4
    assert (
        by_type["delivery.exhausted"]["event_type"] == "job.completed"
        and by_type["delivery.exhausted"]["last_status_code"] == 500
    )
    assert (
        by_type["subscription.disabled"]["subscription_id"] == doomed["id"]
        and "410" in by_type["subscription.disabled"]["reason"]
    )
    refused = stack.http.post(f"{stack.base_url}/v1/webhooks", json={"url": ops.url + "/x", "events": ["endpoint.unhealthy"]})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "events"  # admin keys only


def test_one_key_cannot_see_or_touch_another_keys_webhooks(make_stack, receivers):
    stack = make_stack()
    endpoint = receivers()
    sub = subscribe(stack, endpoint.url)
    stack.wait_final([stack.enqueue("/embeddings", {"input": "x"})["id"]])
    delivery = wait_until(lambda: deliveries(stack, sub["id"]))[0]
    _, other_key = create_key(stack.redis, "other")
    other = {"Authorization": f"Bearer {other_key}"}
    base = f"{stack.base_url}/v1/webhooks"
    for method, path in [
        ("GET", f"/{sub['id']}"),
        ("PATCH", f"/{sub['id']}"),
        ("DELETE", f"/{sub['id']}"),
        ("POST", f"/{sub['id']}/rotate-secret"),
        ("POST", f"/{sub['id']}/test"),
        ("GET", f"/{sub['id']}/deliveries"),
        ("GET", f"/deliveries/{delivery['id']}"),
        ("POST", f"/deliveries/{delivery['id']}/redeliver"),
    ]:
        answer = stack.http.request(method, base + path, headers=other, json={}, timeout=5)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "not_found"
    assert stack.http.get(base, headers=other).json()["data"] == []
    assert stack.http.get(f"{base}/deliveries", headers=other).json()["data"] == []
    assert (
        stack.http.get(f"{base}/signing-secret", headers=other).json()["secret"]
        != stack.http.get(f"{base}/signing-secret").json()["secret"]
    )


# -- SSRF: without WEBHOOK_ALLOW_PRIVATE ----------------------------------------------------

REFUSED_TARGETS = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::ffff:127.0.0.1]/hook",
    "https://localhost/hook",  # a name that resolves to loopback
    "https://100.64.0.1/hook",  # CGNAT
    "http://93.184.215.14/hook",  # plain http
]


@pytest.mark.parametrize("url", REFUSED_TARGETS)
def test_private_targets_are_refused_at_registration(client, auth, url):
    answer = client.post("/v1/webhooks", json={"url": url}, headers=auth)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "invalid_webhook_url"
    assert answer.get_json()["error"]["param"] == "url"
    enqueue = client.post("/v1/embeddings", json={"input": "x", "webhook_url": url}, headers=auth)
    assert enqueue.status_code == 400 and enqueue.get_json()["error"]["param"] == "webhook_url"


@pytest.mark.parametrize("url", ["https://93.184.215.14/hook", "https://[2606:4700:4700::1111]:8443/hook"])
def test_a_public_https_target_is_accepted(client, auth, url):
    answer = client.post("/v1/webhooks", json={"url": url, "events": ["job.failed"]}, headers=auth)
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["job.failed"]
    assert "secret" not in client.get(f"/v1/webhooks/{body['id']}", headers=auth).get_json()


def test_delivery_time_check_refuses_a_target_that_resolves_private(redis_url, emulator, receivers):
    # A URL that passed registration may resolve elsewhere later (DNS rebinding): the
    # address is checked again, after resolution, on every attempt.
    receiver = receivers()
    app = create_app(make_settings(redis_url, emulator.base_url, webhook_allow_private=False))
    resources = of(app)
    delivery = Delivery(
        id="dlv_test",
        event_id="msg_1",
        event_type="job.completed",
        key_id="k",
        url=receiver.url,
        body=json.dumps({"type": "x"}),
        created=time.time(),
    )
    resources.deliveries.create(delivery)
    Courier(resources).send(delivery)
    attempts = resources.deliveries.attempts("dlv_test")
    assert attempts[0]["error"].startswith("refused")
    assert receiver.requests == []


def test_deliveries_ignore_proxies_from_the_environment(redis_url, emulator, receivers, monkeypatch):
    # A proxy would connect on podrelay's behalf, past the address filter's pinning.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    receiver = receivers()
    resources = of(create_app(make_settings(redis_url, emulator.base_url, webhook_allow_private=True)))
    delivery = Delivery(
        id="dlv_proxy", event_id="msg_p", event_type="job.completed", key_id="k", url=receiver.url, body="{}", created=time.time()
    )
    resources.deliveries.create(delivery)
    Courier(resources).send(delivery)
    assert len(receiver.requests) == 1
    assert resources.deliveries.get("dlv_proxy").status == "delivered"


def test_deliveries_held_for_a_busy_endpoint_go_out_as_its_sends_end(redis_url, emulator, receivers):
    receiver = receivers(plan=[(204, {}, 0.3)] * 6)
    settings = make_settings(
        redis_url, emulator.base_url, webhook_allow_private=True, webhook_concurrency=8, webhook_concurrency_per_endpoint=2
    )
    resources = of(create_app(settings))
    ids = [f"dlv_held{n}" for n in range(6)]
    body = json.dumps({"type": "job.completed"})
    resources.deliveries.create_many(
        [
            Delivery(
                id=i,
                event_id=f"msg_{i}",
                event_type="job.completed",
                key_id="k",
                url=receiver.url,
                body=body,
                created=time.time(),
            )
            for i in ids
        ]
    )
    courier = Courier(resources)
    assert courier.send_due() == 6  # one round leases all six: two go out, four are held

    receiver.wait_for(6, timeout=5)  # no second round: each send that ends starts a held one
    courier.pool.shutdown(wait=True)
    arrivals = sorted(request["at"] for request in receiver.requests)
    assert all(later - earlier >= 0.25 for earlier, later in zip(arrivals, arrivals[2:], strict=False))  # 2 at a time
    assert [d.status for d in resources.deliveries.get_many(ids)] == ["delivered"] * 6
    assert courier._in_flight == 0 and not courier._by_target and not courier._held


@pytest.mark.parametrize(
    "body, param",
    [
        ({}, "url"),
        ({"url": "https://93.184.215.14/h", "events": ["job.done"]}, "events[0]"),
        ({"url": "https://93.184.215.14/h", "events": []}, "events"),
    ],
)
def test_bad_subscription_bodies_are_400(client, auth, body, param):
    answer = client.post("/v1/webhooks", json=body, headers=auth)
    assert answer.status_code == 400 and answer.get_json()["error"]["param"] == param


def test_a_subscription_failing_too_long_is_disabled_with_the_reason(make_stack, receivers):
    stack = make_stack(webhook_disable_after=1.0, webhook_retry_schedule=(0, 0.6, 0.6, 0.6, 0.6))
    endpoint = receivers(plan=[500] * 10)
    sub = subscribe(stack, endpoint.url)
    stack.wait_final([stack.enqueue("/embeddings", {"input": "x"})["id"]])
    state = wait_until(
        lambda: (s := stack.http.get(f"{stack.base_url}/v1/webhooks/{sub['id']}").json())["status"] == "disabled" and s
    )
    assert state["disabled_reason"].startswith("No successful delivery since")
    assert state["failing_since"] is not None


def test_a_slow_receiver_does_not_hold_up_the_others(make_stack, receivers):
    stack = make_stack(webhook_concurrency=8, webhook_concurrency_per_endpoint=2)
    slow = receivers(plan=[(204, {}, 10.0)] * 20)
    fast = receivers()
    subscribe(stack, slow.url)
    subscribe(stack, fast.url)
    ids = [stack.enqueue("/embeddings", {"input": str(n)})["id"] for n in range(10)]
    stack.wait_final(ids)
    fast.wait_for(10, timeout=30)
    # With 8 senders and no bound per endpoint, the slow one would take them all for 10 s
    # each: the fast receiver's deliveries would wait for the slow one's answers. Bounded,
    # all ten arrive while the slow receiver still holds its first two.
    assert fast.requests[9]["at"] < slow.requests[0]["at"] + 10
    assert len([r for r in slow.requests if r["at"] <= fast.requests[9]["at"]]) <= 2  # at most 2 at a time
