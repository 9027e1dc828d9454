"""Per-key limits: requests per minute (also across two web processes), jobs in flight, budgets."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bench.harness import free_port
from integration.accounts.keys import create_key, lookup, set_limits
from integration.resources import of
from tests.support import make_settings, settings_env

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}


def limited_key(app, **limits) -> dict:
    key, secret = create_key(of(app).redis, "limited")
    set_limits(of(app).redis, key.id, **limits)
    return {"Authorization": f"Bearer {secret}"}


def test_burst_over_the_rate_limit_refuses_exactly_the_overflow_with_headers(client, app):
    auth = limited_key(app, rpm="10")
    answers = [client.get("/v1/jobs", headers=auth) for _ in range(14)]

    assert [a.status_code for a in answers] == [200] * 10 + [429] * 4
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers[:10]] == [str(9 - i) for i in range(10)]
    for answer in answers:
        assert answer.headers.getlist("x-ratelimit-limit-requests") == ["10"]  # once, on a 429 too
        assert len(answer.headers.getlist("x-ratelimit-remaining-requests")) == 1
        assert answer.headers["x-ratelimit-reset-requests"].endswith("s")
        assert 0 < int(answer.headers["x-ratelimit-reset-requests"][:-1]) <= 60
    refused = answers[-1]
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(refused.headers.getlist("Retry-After")) == 1
    # The same on the routes whose request is counted in the write that stores its job.
    stored_key = limited_key(app, rpm="1")
    posted = [client.post("/v1/chat/completions", json=CHAT, headers=stored_key) for _ in range(2)]
    assert [a.status_code for a in posted] == [202, 429]
    for answer in posted:
        assert answer.headers.getlist("x-ratelimit-limit-requests") == ["1"]
        assert len(answer.headers.getlist("x-ratelimit-reset-requests")) == 1
    assert len(posted[1].headers.getlist("Retry-After")) == 1
    error = refused.get_json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"] == "Rate limit exceeded: 10 requests per minute"
    assert error["details"]["limit"] == 10 and error["details"]["window"] == "minute"
    assert 1 <= error["details"]["retry_after_secs"] <= 60
    assert refused.headers["Retry-After"] == str(error["details"]["retry_after_secs"])


def test_rate_limit_is_per_key_and_errors_count_too(client, app):
    first, second = limited_key(app, rpm="3"), limited_key(app, rpm="3")
    assert [client.post("/v1/chat/completions", json={}, headers=first).status_code for _ in range(4)] == [400, 400, 400, 429]
    assert client.get("/v1/jobs", headers=second).status_code == 200


def test_unlimited_key_has_no_rate_headers_and_is_never_refused(client, app):
    auth = limited_key(app, rpm="unlimited")
    answers = [client.get("/v1/jobs", headers=auth) for _ in range(700)]
    assert {a.status_code for a in answers} == {200}
    assert "x-ratelimit-limit-requests" not in answers[0].headers


@pytest.mark.parametrize(
    "method, path, admitted",
    [("GET", "/v1/jobs", 200), ("POST", "/v1/chat/completions", 202)],  # counted alone; counted by the job's write
)
def test_rate_limit_holds_exactly_across_two_web_processes(
    method, path, admitted, redis_url, emulator, app, tmp_path, procfile_webs
):
    env = settings_env(make_settings(redis_url, emulator.base_url))
    ports = [free_port(), free_port()]
    for port in ports:
        procfile_webs({**env, "WEB_CONCURRENCY": "1"}, port, tmp_path / f"web-{port}.log")
    auth = limited_key(app, rpm="30")
    body = CHAT if method == "POST" else None

    def call(i: int) -> requests.Response:
        return requests.request(method, f"http://127.0.0.1:{ports[i % 2]}{path}", json=body, headers=auth, timeout=10)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, range(50)))
    by_port = {port: [a.status_code for i, a in enumerate(answers) if ports[i % 2] == port] for port in ports}
    assert sorted(a.status_code for a in answers) == [admitted] * 30 + [429] * 20
    assert all(admitted in codes for codes in by_port.values()), by_port  # both processes admitted some
    remaining = sorted(int(a.headers["x-ratelimit-remaining-requests"]) for a in answers if a.status_code == admitted)
    assert remaining == list(range(30))  # every admitted request saw its own place in the shared window
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"]["code"] == "rate_limit_exceeded" and int(refused.headers["Retry-After"]) >= 1
    stored = len(list(of(app).redis.scan_iter("pr:job:*")))
    assert stored == (30 if method == "POST" else 0)  # a refused request stored no job


def test_invalid_enqueues_count_and_a_key_at_its_limit_is_refused_before_its_body_is_read(client, app):
    auth = limited_key(app, rpm="3")
    invalid = [client.post("/v1/chat/completions", json={}, headers=auth) for _ in range(2)]
    assert [a.status_code for a in invalid] == [400, 400]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in invalid] == ["2", "1"]  # counted after their 400
    stored = client.post("/v1/chat/completions", json=CHAT, headers=auth)
    assert stored.status_code == 202 and stored.headers["x-ratelimit-remaining-requests"] == "0"
    over = client.post("/v1/chat/completions", json={}, headers=auth)  # invalid, but over the limit first
    assert over.status_code == 429 and over.get_json()["error"]["code"] == "rate_limit_exceeded"
    assert client.post("/v1/chat/completions", json=CHAT, headers=auth).status_code == 429
    assert len(client.get("/v1/jobs", headers=limited_key(app)).get_json()["data"]) == 0  # another key: unaffected


def test_concurrency_limit_refuses_then_admits_when_a_job_ends(client, app):
    auth = limited_key(app, concurrency="2")
    first = client.post("/v1/chat/completions", json=CHAT, headers=auth)
    second = client.post("/v1/chat/completions", json=CHAT, headers=auth)
    assert (first.status_code, second.status_code) == (202, 202)

    refused = client.post("/v1/chat/completions", json=CHAT, headers=auth)
    assert refused.status_code == 429
    error = refused.get_json()["error"]
    assert error["code"] == "concurrency_limit_exceeded"
    assert error["details"] == {"limit": 2, "in_flight": 2}
    assert refused.headers["Retry-After"] == "5"

    assert client.post(f"/v1/jobs/{first.get_json()['id']}/cancel", headers=auth).status_code == 200
    assert client.post("/v1/chat/completions", json=CHAT, headers=auth).status_code == 202


def _estimate(client, auth) -> float:
    return client.post("/v1/chat/completions/price", json=CHAT, headers=auth).get_json()["estimated_cost"]


def test_budget_refuses_with_seed_body_then_admits_when_a_job_ends_uncharged(client, app):
    probe = limited_key(app)
    cost = _estimate(client, probe)
    auth = limited_key(app, budget=str(cost * 2.5))
    jobs = [client.post("/v1/chat/completions", json=CHAT, headers=auth) for _ in range(2)]
    assert [j.status_code for j in jobs] == [202, 202]

    refused = client.post("/v1/chat/completions", json=CHAT, headers={**auth, "X-Request-Id": "req-budget-1"})
    assert refused.status_code == 402
    error = refused.get_json()["error"]
    assert {k: error[k] for k in ("code", "message", "param", "request_id", "type")} == {
        "code": "budget_exceeded",
        "message": "Budget limit exceeded for monthly period",
        "param": None,
        "request_id": "req-budget-1",
        "type": "invalid_request_error",
    }
    assert error["details"]["reserved"] == pytest.approx(cost * 2)
    assert error["details"]["estimated_cost"] == pytest.approx(cost)

    # A cancelled job is not charged: its reservation is released and the next job fits.
    client.post(f"/v1/jobs/{jobs[0].get_json()['id']}/cancel", headers=auth)
    assert client.post("/v1/chat/completions", json=CHAT, headers=auth).status_code == 202
    assert client.post("/v1/chat/completions", json=CHAT, headers=auth).status_code == 402


def test_completed_jobs_are_charged_to_the_month_and_shown_by_keys_usage(make_stack):
    stack = make_stack()
    http, base = stack.http, stack.base_url
    cost = http.post(f"{base}/v1/chat/completions/price", json=CHAT, timeout=5).json()["estimated_cost"]
    key_id = lookup(stack.redis, stack.key, stack.settings).key_id
    set_limits(stack.redis, key_id, budget=str(cost * 2.5))  # the web app is in this process: applies at once

    ids = [stack.enqueue("/chat/completions", CHAT)["id"] for _ in range(2)]
    jobs = stack.wait_final(ids)
    assert {j["status"] for j in jobs.values()} == {"completed"}
    # Both completed: charged, so the budget now refuses a third even with nothing in flight.
    assert http.post(f"{base}/v1/chat/completions", json=CHAT, timeout=5).status_code == 402

    runner = stack.app.test_cli_runner()
    shown = runner.invoke(args=["keys", "usage", key_id])
    assert shown.exit_code == 0, shown.output
    assert f"spend            {cost * 2:.6f} USD over 2 completed jobs" in shown.output
    assert "jobs in flight   0 (reserving 0.000000 USD)" in shown.output
    usage = http.get(f"{base}/v1/usage", timeout=5).json()
    assert usage["usage"]["spend"] == pytest.approx(cost * 2)
    assert usage["limits"]["monthly_budget"] == pytest.approx(cost * 2.5)


def test_keys_limits_cli_sets_shows_and_resets(app):
    key, _ = create_key(of(app).redis, "cli")
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["keys", "limits", "cli", "--rpm", "120", "--concurrency", "unlimited", "--budget", "25"])
    assert shown.exit_code == 0, shown.output
    assert "120 requests/minute, unlimited jobs in flight, 25 USD/month" in shown.output
    shown = runner.invoke(args=["keys", "limits", key.id, "--rpm", "default", "--budget", "default"])
    assert "600 requests/minute, unlimited jobs in flight, no monthly budget" in shown.output
    assert runner.invoke(args=["keys", "limits", key.id, "--rpm", "-3"]).exit_code != 0
    assert runner.invoke(args=["keys", "limits", "nobody", "--rpm", "3"]).exit_code != 0
    listed = runner.invoke(args=["keys", "list"])
    assert "600 requests/minute, unlimited jobs in flight" in listed.output
