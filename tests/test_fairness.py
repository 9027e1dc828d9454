"""Fair and steady under pressure: each endpoint's /run budget shared across keys by weight,
priorities within a key, deadlines (`deadline`, `Cancel-After`), and no head-of-line blocking
by a slow RunPod call."""

from __future__ import annotations

import time

from standardwebhooks import Webhook

from integration.accounts.keys import create_key, set_limits
from integration.jobs.fairness import FairQueue, score
from tests.support import wait_until

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def test_the_queue_shares_turns_across_keys_by_weight_and_orders_each_key_by_priority(redis_url):
    import redis

    conn = redis.Redis.from_url(redis_url)
    queue = FairQueue(conn)
    endpoint = f"ep-fair-{time.monotonic_ns()}"
    queue.push(endpoint, [("key_a", 1.0, f"a{i}", score(None, 1000 + i)) for i in range(100)])
    queue.push(endpoint, [("key_b", 1.0, f"b{i}", score(None, 2000 + i)) for i in range(10)])
    first = queue.pop(endpoint, 20)
    assert sorted(first) == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)])  # half each
    assert [j for j in first if j.startswith("b")] == [f"b{i}" for i in range(10)]  # arrival order within a key
    assert queue.pop(endpoint, 5) == ["a10", "a11", "a12", "a13", "a14"]  # B has none left: A gets every turn
    queue.push(endpoint, [("key_c", 3.0, f"c{i}", score(None, 3000 + i)) for i in range(30)])
    turns = queue.pop(endpoint, 40)
    assert sum(j.startswith("c") for j in turns) == 30 and sum(j.startswith("a") for j in turns) == 10  # weight 3 : 1
    queue.push(endpoint, [("key_p", 1.0, "p-low", score("low", 1)), ("key_p", 1.0, "p-normal", score(None, 2))])
    queue.push(endpoint, [("key_p", 1.0, "p-high", score("high", 3)), ("key_p", 1.0, "p-high", score("high", 9))])
    mine = [j for j in queue.pop(endpoint, 200) if j.startswith("p")]
    assert mine == ["p-high", "p-normal", "p-low"]  # priority, then arrival; joining twice keeps the first place
    assert queue.pop(endpoint, 10) == [] and endpoint not in queue.endpoints()


def test_a_small_key_is_not_stuck_behind_a_flood_and_its_priorities_order_its_own(make_stack, emulator):
    # 2 /run calls a second on this endpoint: key A's 40 jobs would take 20 s first come, first served.
    stack = make_stack(workers=0, run_budget_per_10s=20)
    flood_id, flood = create_key(stack.redis, "flood")
    set_limits(stack.redis, flood_id.id, rpm="unlimited", concurrency="unlimited")
    flooded = [
        stack.http.post(f"{stack.base_url}/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {flood}"})
        for _ in range(40)
    ]
    assert all(answer.status_code == 202 for answer in flooded)
    small = [stack.enqueue("/chat/completions", {**CHAT, "priority": p})["id"] for p in ("low", "high", "normal")]
    stack.start_worker()
    done = stack.wait_final(small, timeout=120)
    assert all(job["status"] == "completed" for job in done.values())
    records = {job_id: stack.resources.jobs.get(job_id) for job_id in small}
    last_small = max(job.submitted for job in records.values())
    flood_jobs = [stack.resources.jobs.get(a.json()["id"]) for a in flooded]
    before = [job for job in flood_jobs if job.submitted and job.submitted <= last_small]
    # Taking turns, A gets about one call per small-key job (and the first second's); first come, first served: all 40.
    assert len(before) <= 10, f"{len(before)} of the flood's jobs went before the small key's three"
    order = sorted(records.values(), key=lambda job: job.submitted)
    assert [job.priority for job in order] == ["high", "normal", "low"]  # within the key: by priority


def test_cancel_after_ends_a_running_job_at_runpod_and_a_queued_one_is_never_submitted(make_stack, slow_emulator):
    slow = slow_emulator(30.0)
    stack = make_stack(runpod_api_base=f"{slow.base_url}/v2")
    running = stack.http.post(f"{stack.base_url}/v1/chat/completions", json=CHAT, headers={"Cancel-After": "3s"}, timeout=10)
    assert running.status_code == 202
    job = stack.wait_final([running.json()["id"]], timeout=60)[running.json()["id"]]
    assert job["status"] == "cancelled" and job["error"]["code"] == "deadline_exceeded"
    runpod_id = job["runpod"]["id"]
    assert runpod_id and wait_until(lambda: slow.jobs[runpod_id].status == "CANCELLED", timeout=30)

    stack.kill_workers()  # nothing submits now
    sent = len(slow.jobs)
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
    queued = stack.enqueue("/chat/completions", {**CHAT, "deadline": deadline})["id"]
    time.sleep(4)
    stack.start_worker()
    job = stack.wait_final([queued], timeout=60)[queued]
    assert job["status"] == "cancelled" and job["error"]["code"] == "deadline_exceeded"
    assert job["runpod"]["id"] is None and len(slow.jobs) == sent  # RunPod never got it


def test_a_bad_priority_or_deadline_is_a_400_naming_it(make_stack):
    stack = make_stack(workers=0)
    url = f"{stack.base_url}/v1/chat/completions"
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    for body, headers, param in [
        ({**CHAT, "priority": "urgent"}, {}, "priority"),
        ({**CHAT, "deadline": past}, {}, "deadline"),
        ({**CHAT, "deadline": "tomorrow"}, {}, "deadline"),
        (CHAT, {"Cancel-After": "soon"}, "Cancel-After"),
        (CHAT, {"Cancel-After": "0s"}, "Cancel-After"),
        (CHAT, {"Cancel-After": "200h"}, "Cancel-After"),
    ]:
        answer = stack.http.post(url, json=body, headers=headers, timeout=10)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, (body, headers, answer.text)


def test_a_hanging_run_call_delays_only_its_own_job(make_stack, emulator):
    stack = make_stack(workers=0)
    endpoint = stack.settings.endpoints["CHAT"]
    emulator.steer(endpoint, {"answer_after": 25})  # the first /run on this endpoint takes 25 s to answer
    stuck = stack.enqueue("/chat/completions", CHAT)["id"]
    stack.start_worker()
    wait_until(lambda: not emulator.steering.get(endpoint), timeout=30, message="the slow /run never reached RunPod")
    others = [stack.enqueue("/chat/completions", CHAT)["id"] for _ in range(9)]
    finished = stack.wait_final(others, timeout=60)
    assert all(job["status"] == "completed" for job in finished.values())
    assert stack.job(stuck)["status"] == "queued"  # its /run has still not answered, and nobody waited for it
    assert stack.wait_final([stuck], timeout=90)[stuck]["status"] == "completed"


def test_a_keys_weight_is_a_limit_row_above_zero(redis_url):
    import pytest
    import redis

    from integration.accounts.keys import stored_limits
    from integration.accounts.limits import Limits
    from integration.config import Settings

    conn = redis.Redis.from_url(redis_url)
    key, _ = create_key(conn, "weighted")
    settings = Settings.from_env({})
    assert Limits.resolve(stored_limits(conn, key.id), settings).share_weight == 1.0
    set_limits(conn, key.id, weight="3")
    assert Limits.resolve(stored_limits(conn, key.id), settings).share_weight == 3.0
    for bad in ("0", "-1", "unlimited", "5000"):
        with pytest.raises(ValueError, match="weight"):
            set_limits(conn, key.id, weight=bad)


def test_the_circuit_opens_on_repeated_5xx_probes_and_closes_and_no_job_is_lost(make_stack, slow_emulator, receivers):
    from collections import deque

    emulator = slow_emulator(0.2)  # its own: the faults below stay in this test
    stack = make_stack(
        workers=0, circuit_failures=3, circuit_cooldown=1.0, retry_base=0.05, runpod_api_base=f"{emulator.base_url}/v2"
    )
    endpoint = stack.settings.endpoints["CHAT"]
    admin_id, admin = create_key(stack.redis, "operator", admin=True)
    set_limits(stack.redis, admin_id.id, rpm="unlimited")
    watch = receivers()
    admin_http = {"Authorization": f"Bearer {admin}"}
    events = ["endpoint.unhealthy", "endpoint.recovered"]
    sub = stack.http.post(f"{stack.base_url}/v1/webhooks", json={"url": watch.url, "events": events}, headers=admin_http).json()
    circuits = stack.resources.circuits
    circuits.record(endpoint, True, time.time())  # whatever an earlier test left: closed
    emulator.faults["run"] = deque([503] * 10_000)  # the endpoint fails every /run until told otherwise
    ids = [stack.enqueue("/chat/completions", CHAT)["id"] for _ in range(5)]
    stack.start_worker()
    wait_until(lambda: circuits.state(endpoint) != "closed", timeout=60, message="the circuit never opened")
    failed_at_open = emulator.calls[("run", 503)]
    ready = stack.http.get(f"{stack.base_url}/readyz", timeout=10).json()
    assert ready["checks"]["circuits"][endpoint]["state"] in ("open", "half_open")
    health = stack.http.get(f"{stack.base_url}/v1/runpod/chat/health", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert health.json()["circuit"] in ("open", "half_open")
    metrics = stack.http.get(f"{stack.base_url}/metrics", timeout=10).text
    assert "podrelay_runpod_circuits_open 1.0" in metrics
    time.sleep(3.0)  # three cool-downs: one probe each, where five jobs' retries would have made many calls
    assert emulator.calls[("run", 503)] - failed_at_open <= 4
    assert all(stack.job(job_id)["status"] == "queued" for job_id in ids)  # waiting, not failed
    emulator.faults["run"].clear()  # the endpoint recovers: the next probe closes the circuit
    done = stack.wait_final(ids, timeout=120)
    assert all(job["status"] == "completed" for job in done.values())
    assert circuits.state(endpoint) == "closed"
    heard = [Webhook(sub["secret"]).verify(r["body"], r["headers"]) for r in watch.wait_for(2, timeout=30)]
    assert [e["type"] for e in heard] == ["endpoint.unhealthy", "endpoint.recovered"]  # once each, not per probe
    assert all(e["data"]["endpoint_id"] == endpoint for e in heard)
