"""The RunPod client against `responses`: every operation, every error, retries and timeouts."""

from __future__ import annotations

import json
import threading
import time
from email.utils import formatdate

import pytest
import requests
import responses
from responses import matchers

from integration.runpod import client as runpod_client
from integration.runpod.client import (
    RunPodAuthError,
    RunPodClient,
    RunPodNotFound,
    RunPodRequestError,
    RunPodUnavailable,
    parse_retry_after,
)

BASE = "https://api.runpod.ai/v2"
EP = "o6r4i5q9j8k7l6"


@pytest.fixture
def client():
    return RunPodClient("rp-secret", BASE, timeout=(1.5, 4.0), retries=2, backoff=0.01)


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def _auth():
    return matchers.header_matcher({"Authorization": "Bearer rp-secret"})


def test_run_sends_input_webhook_and_policy(client, mocked):
    body = {"input": {"prompt": "x"}, "webhook": "https://relay.example.com/cb/t", "policy": {"executionTimeout": 60000}}
    mocked.post(f"{BASE}/{EP}/run", json={"id": "j1", "status": "IN_QUEUE"}, match=[_auth(), matchers.json_params_matcher(body)])
    assert client.run(EP, {"prompt": "x"}, webhook=body["webhook"], policy=body["policy"]) == {"id": "j1", "status": "IN_QUEUE"}


def test_run_without_webhook_sends_input_only(client, mocked):
    mocked.post(
        f"{BASE}/{EP}/run", json={"id": "j1", "status": "IN_QUEUE"}, match=[matchers.json_params_matcher({"input": {"a": 1}})]
    )
    assert client.run(EP, {"a": 1})["id"] == "j1"


def test_runsync_passes_wait_and_a_longer_read_timeout(client, mocked):
    mocked.post(
        f"{BASE}/{EP}/runsync",
        json={"id": "j1", "status": "COMPLETED", "output": {"data": [{"embedding": [0.1]}]}},
        match=[matchers.query_param_matcher({"wait": "30000"})],
    )
    seen = {}
    original = client.session.request

    def spy(*args, **kwargs):
        seen["timeout"] = kwargs["timeout"]
        return original(*args, **kwargs)

    client.session.request = spy
    assert client.runsync(EP, {"input": "x"}, wait_ms=30000)["status"] == "COMPLETED"
    assert seen["timeout"] == (1.5, 40.0)


@pytest.mark.parametrize(
    "method, call, verb, path",
    [
        ("status", lambda c: c.status(EP, "j1"), "GET", "status/j1"),
        ("stream", lambda c: c.stream(EP, "j1"), "GET", "stream/j1"),
        ("cancel", lambda c: c.cancel(EP, "j1"), "POST", "cancel/j1"),
        ("retry", lambda c: c.retry(EP, "j1"), "POST", "retry/j1"),
        ("purge-queue", lambda c: c.purge_queue(EP), "POST", "purge-queue"),
        ("health", lambda c: c.health(EP), "GET", "health"),
    ],
)
def test_each_operation_calls_its_route(client, mocked, method, call, verb, path):
    mocked.add(verb, f"{BASE}/{EP}/{path}", json={"ok": method}, match=[_auth()])
    assert call(client) == {"ok": method}
    assert client.calls[method] == 1


def test_every_call_has_connect_and_read_timeouts(client, mocked):
    mocked.get(f"{BASE}/{EP}/status/j1", json={"status": "IN_QUEUE"})
    client.status(EP, "j1")
    assert mocked.calls[0].request.req_kwargs["timeout"] == (1.5, 4.0)


def test_429_with_retry_after_is_retried_then_succeeds(client, mocked):
    mocked.get(f"{BASE}/{EP}/status/j1", status=429, headers={"Retry-After": "0"}, json={"error": "slow down"})
    mocked.get(f"{BASE}/{EP}/status/j1", json={"id": "j1", "status": "COMPLETED"})
    assert client.status(EP, "j1")["status"] == "COMPLETED"
    assert len(mocked.calls) == 2


def test_5xx_is_retried_with_backoff_then_raises_unavailable(client, mocked):
    mocked.post(f"{BASE}/{EP}/run", status=503, json={"error": "busy"})
    with pytest.raises(RunPodUnavailable) as raised:
        client.run(EP, {"a": 1})
    assert raised.value.status == 503
    assert len(mocked.calls) == 3  # first try plus two retries


def test_long_retry_after_is_not_slept_but_handed_to_the_caller(client, mocked, monkeypatch):
    mocked.get(f"{BASE}/{EP}/status/j1", status=429, headers={"Retry-After": "120"}, json={})
    slept: list[float] = []
    caller, sleep = threading.get_ident(), runpod_client.time.sleep

    def sleep_noted(seconds: float) -> None:  # `time` is one module: other threads of the run keep sleeping
        if threading.get_ident() == caller:
            slept.append(seconds)
        else:
            sleep(seconds)

    monkeypatch.setattr(runpod_client.time, "sleep", sleep_noted)
    with pytest.raises(RunPodUnavailable) as raised:
        client.status(EP, "j1")
    assert raised.value.retry_after == 120
    assert slept == []
    assert len(mocked.calls) == 1


def test_connection_error_is_unavailable(client, mocked):
    mocked.get(f"{BASE}/{EP}/status/j1", body=requests.ConnectionError("refused"))
    with pytest.raises(RunPodUnavailable):
        client.status(EP, "j1")
    assert len(mocked.calls) == 3


def test_run_is_not_retried_after_a_read_timeout(client, mocked):
    # The request may have reached RunPod: sending it again could run the job twice.
    mocked.post(f"{BASE}/{EP}/run", body=requests.ReadTimeout("slow"))
    with pytest.raises(RunPodUnavailable):
        client.run(EP, {"a": 1})
    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    "status, error_class",
    [(404, RunPodNotFound), (401, RunPodAuthError), (403, RunPodAuthError), (400, RunPodRequestError), (422, RunPodRequestError)],
)
def test_non_retryable_errors_are_typed_and_not_retried(client, mocked, status, error_class):
    mocked.get(f"{BASE}/{EP}/status/j1", status=status, json={"error": "request does not exist"})
    with pytest.raises(error_class) as raised:
        client.status(EP, "j1")
    assert raised.value.status == status
    assert "request does not exist" in str(raised.value)
    assert len(mocked.calls) == 1


def test_answer_that_is_not_json_is_unavailable(client, mocked):
    mocked.get(f"{BASE}/{EP}/health", body="<html>gateway</html>", status=200)
    with pytest.raises(RunPodUnavailable):
        client.health(EP)


def test_redirects_are_not_followed(client, mocked):
    mocked.get(f"{BASE}/{EP}/health", status=302, headers={"Location": "https://elsewhere.example.com/"})
    with pytest.raises(RunPodRequestError):
        client.health(EP)
    assert len(mocked.calls) == 1


def test_api_key_is_not_in_error_messages(client, mocked):
    mocked.post(f"{BASE}/{EP}/run", status=401, json={"error": "Unauthorized"})
    with pytest.raises(RunPodAuthError) as raised:
        client.run(EP, {})
    assert "rp-secret" not in str(raised.value)
    assert json.loads(mocked.calls[0].request.body) == {"input": {}}


def test_retry_after_parses_seconds_and_http_dates():
    now = time.time()
    assert parse_retry_after("7") == 7
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
