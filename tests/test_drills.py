"""Fault drills that fit in the test suite's time (the full ones: bench/drills.py)."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from integration.redis.connection import ensure_embedded, stop_embedded
from tests.support import Stack, make_settings, wait_until

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def own_redis(emulator, tmp_path):
    """A stack on a Redis of its own, which a test may stop and start: (build, redis_dir)."""
    redis_dir = str(tmp_path / "redis")
    stacks: list[Stack] = []

    def build(**changes) -> Stack:
        settings = make_settings(ensure_embedded(redis_dir), emulator.base_url, **changes)
        stacks.append(Stack(settings, emulator, tmp_path))
        return stacks[-1]

    yield build, redis_dir
    for stack in stacks:
        stack.close()
    stop_embedded(redis_dir)


def test_accepted_jobs_and_their_events_survive_a_redis_restart(own_redis, receivers):
    build, redis_dir = own_redis
    stack = build(public_base_url="auto", webhook_allow_private=True, webhook_retry_schedule=(0, 0.5, 1, 2, 4, 4, 4))
    stack.start_worker()
    hook = receivers()
    ready = lambda: stack.http.get(f"{stack.base_url}/readyz", timeout=5).status_code == 200  # noqa: E731
    wait_until(ready, message="the worker did not start", every=0.2)
    ids = [
        stack.enqueue("/chat/completions", {**CHAT, "webhook_url": hook.url, "emulate": {"delay": 1}})["id"] for _ in range(20)
    ]
    stop_embedded(redis_dir)  # SHUTDOWN syncs the append-only file
    down = stack.http.post(f"{stack.base_url}/v1/chat/completions", json=CHAT, timeout=10)
    assert down.status_code == 503 and down.json()["error"]["code"] == "service_unavailable"
    time.sleep(1)
    ensure_embedded(redis_dir)

    def accepted():  # the web process reconnects on its own
        try:
            answer = stack.http.post(f"{stack.base_url}/v1/chat/completions", json={**CHAT, "webhook_url": hook.url}, timeout=10)
        except requests.RequestException:
            return None
        return answer if answer.status_code == 202 else None

    ids.append(wait_until(accepted, 30, "podrelay did not come back after Redis did", every=0.2).json()["id"])
    jobs = stack.wait_final(ids, timeout=60)
    assert [j["status"] for j in jobs.values()].count("completed") == len(ids)
    hook.wait_for(len(ids), timeout=30)
    delivered = {r["body"] for r in hook.requests}
    assert all(any(job_id.encode() in body for body in delivered) for job_id in ids)


def test_a_worker_started_while_redis_is_down_waits_for_it(own_redis):
    build, redis_dir = own_redis
    stack = build()
    stop_embedded(redis_dir)
    worker = stack.start_worker()
    time.sleep(2.5)
    assert worker.poll() is None, "the worker exited while Redis was down"
    ensure_embedded(redis_dir)

    def accepted():
        answer = stack.http.post(f"{stack.base_url}/v1/chat/completions", json=CHAT, timeout=10)
        return answer if answer.status_code == 202 else None

    job_id = wait_until(accepted, 30, "podrelay did not accept a job once Redis was back", every=0.2).json()["id"]
    assert stack.wait_final([job_id], timeout=40)[job_id]["status"] == "completed"


def test_a_worker_told_to_stop_while_redis_is_down_stops(own_redis):
    # A platform stops every process at once, Redis included: a worker whose shutdown
    # cannot reach Redis must still end, not wait for a Redis that is not coming back.
    build, redis_dir = own_redis
    stack = build()
    worker = stack.start_worker()
    wait_until(lambda: stack.redis.smembers("rq:workers"), 30, "the worker did not start", every=0.1)  # registered: working
    stop_embedded(redis_dir)
    time.sleep(1)
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=20)  # raises TimeoutExpired if it goes on waiting for Redis


def test_a_held_request_whose_redis_goes_away_is_answered_with_its_job(own_redis):
    from concurrent.futures import ThreadPoolExecutor

    build, redis_dir = own_redis
    stack = build()
    url = f"{stack.base_url}/v1/chat/completions"
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(stack.http.post, url, json=CHAT, headers={"Prefer": "wait=30"}, timeout=60)
        time.sleep(1.5)  # stored, and waiting (no worker)
        stop_embedded(redis_dir)
        answer = held.result()
    assert answer.status_code == 202, answer.text  # not 503: the job exists and is named
    assert answer.headers["Location"] == f"/v1/jobs/{answer.json()['id']}"
