"""`GET /metrics`: counters from every process (web and worker), summed in Redis, and live gauges."""

from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from tests.support import make_settings

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def samples(text: str) -> dict[tuple, float]:
    """(sample name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def scrape_until(stack, expected: dict, timeout: float = 10.0) -> dict:
    """The metrics once they show `expected` (workers add their counts once a second)."""
    deadline = time.time() + timeout
    while True:
        got = samples(stack.http.get(f"{stack.base_url}/metrics", timeout=5).text)
        if all(got.get(k) == v for k, v in expected.items()) or time.time() > deadline:
            return got


def test_metrics_count_requests_transitions_runpod_calls_and_deliveries_across_processes(make_stack, receivers):
    stack = make_stack()
    hook = receivers()
    ids = [stack.enqueue("/chat/completions", {**CHAT, "webhook_url": hook.url})["id"] for _ in range(3)]
    stack.wait_final(ids)
    hook.wait_for(3)
    delivered = ("podrelay_webhook_deliveries_total", (("outcome", "delivered"),))
    completed = ("podrelay_job_transitions_total", (("status", "completed"), ("surface", "chat")))
    got = scrape_until(stack, {delivered: 3, completed: 3})
    answer = stack.http.get(f"{stack.base_url}/metrics", timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    assert got[("podrelay_http_requests_total", (("method", "POST"), ("route", "/v1/chat/completions"), ("status", "202")))] == 3
    assert got[("podrelay_job_transitions_total", (("status", "queued"), ("surface", "chat")))] == 3
    assert got[("podrelay_job_transitions_total", (("status", "completed"), ("surface", "chat")))] == 3  # counted by the worker
    assert got[("podrelay_job_duration_seconds_count", (("surface", "chat"),))] == 3
    assert got[("podrelay_job_duration_seconds_bucket", (("le", "+Inf"), ("surface", "chat")))] == 3
    assert got[("podrelay_runpod_calls_total", (("operation", "run"), ("status", "200")))] == 3
    assert got[("podrelay_webhook_deliveries_total", (("outcome", "delivered"),))] == 3
    assert got[("podrelay_workers_alive", ())] == 1
    assert got[("podrelay_jobs_unfinished", ())] == 0
    assert got[("podrelay_deliveries_pending", ())] == 0
    latency = got[("podrelay_http_request_duration_seconds_count", (("route", "/v1/chat/completions"),))]
    assert latency == 3


def test_failed_runpod_calls_and_retried_deliveries_are_counted(make_stack, receivers, emulator):
    stack = make_stack()
    hook = receivers([503])
    requests.post(f"{emulator.base_url}/_emulator/faults", json={"run": [429]}, timeout=5)  # the first submission refused
    job_id = stack.enqueue("/chat/completions", {**CHAT, "webhook_url": hook.url})["id"]
    stack.wait_final([job_id])
    hook.wait_for(2)
    got = scrape_until(stack, {("podrelay_webhook_deliveries_total", (("outcome", "delivered"),)): 1})
    assert got[("podrelay_webhook_deliveries_total", (("outcome", "retry"),))] == 1
    assert got[("podrelay_webhook_deliveries_total", (("outcome", "delivered"),))] == 1
    assert got[("podrelay_runpod_calls_total", (("operation", "run"), ("status", "429")))] == 1
    assert got[("podrelay_runpod_calls_total", (("operation", "run"), ("status", "200")))] == 1


def test_metrics_token_guards_the_route_when_set(redis_url, emulator):
    client = create_app(make_settings(redis_url, emulator.base_url, metrics_token="scrape-me-please")).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"}).status_code == 200
