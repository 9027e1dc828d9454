"""End to end: podrelay over loopback HTTP, real RQ worker processes, the RunPod emulator."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from tests.support import wait_until

CHAT = {"messages": [{"role": "user", "content": "Summarize this"}]}
SURFACE_REQUESTS = {
    "chat": ("/chat/completions", CHAT),
    "images": ("/images/generations", {"prompt": "a lighthouse", "n": 2}),
    "transcribe": ("/audio/transcriptions", {"audioUrl": "https://cdn.example.com/call.mp3", "language": "en"}),
    "embeddings": ("/embeddings", {"input": ["cold starts", "warm pools"]}),
}


def assert_normalised(surface: str, result: dict, base_url: str = "") -> None:
    if surface == "chat":
        assert result["object"] == "chat.completion"
        assert result["choices"][0]["message"] == {"role": "assistant", "content": "Echo: Summarize this"}
    elif surface == "images":
        assert len(result["data"]) == 2
        url = result["data"][0]["url"]  # a signed link: relative without PUBLIC_BASE_URL
        assert requests.get(url if url.startswith("http") else base_url + url, timeout=10).content.startswith(b"\x89PNG")
    elif surface == "transcribe":
        assert result["text"] == "Transcript of https://cdn.example.com/call.mp3"
        assert result["language"] == "en" and result["segments"][0]["end"] == 2.5
    else:
        assert result["object"] == "list"
        assert [d["index"] for d in result["data"]] == [0, 1]
        assert len(result["data"][0]["embedding"]) == 8


def status_calls(emulator) -> int:
    return sum(n for (op, _), n in emulator.calls.items() if op == "status")


def run_surface(stack, emulator, surface: str) -> tuple[dict, int, int]:
    """Run one job of `surface` to its end: the job, and the /status calls and callbacks it cost."""
    route, body = SURFACE_REQUESTS[surface]
    polls_before, callbacks_before = status_calls(emulator), emulator.callbacks_sent
    job_id = stack.enqueue(route, body)["id"]
    job = stack.wait_final([job_id])[job_id]
    assert job["status"] == "completed", job
    assert job["runpod"]["status"] == "COMPLETED" and job["runpod"]["id"]
    assert job["started"] and job["finished"] and job["error"] is None
    assert_normalised(surface, job["result"], stack.base_url)
    return job, status_calls(emulator) - polls_before, emulator.callbacks_sent - callbacks_before


@pytest.mark.parametrize("surface", sorted(SURFACE_REQUESTS))
def test_surface_completes_through_the_callback(make_stack, emulator, surface):
    _, polls, callbacks = run_surface(make_stack(callbacks=True), emulator, surface)
    assert callbacks == 1
    assert polls == 0  # the callback made polling unnecessary


@pytest.mark.parametrize("surface", sorted(SURFACE_REQUESTS))
def test_surface_completes_by_polling_alone(make_stack, emulator, surface):
    _, polls, callbacks = run_surface(make_stack(callbacks=False), emulator, surface)
    assert polls > 0
    assert callbacks == 0  # no webhook was given to RunPod


@pytest.mark.parametrize("callbacks", [True, False], ids=["callback", "polling"])
@pytest.mark.parametrize(
    "outcome, status, code",
    [("FAILED", "failed", "worker_error"), ("CANCELLED", "cancelled", "cancelled"), ("TIMED_OUT", "timed_out", "timed_out")],
)
def test_runpod_final_states_end_the_job_with_the_reason(make_stack, callbacks, outcome, status, code):
    stack = make_stack(callbacks=callbacks)
    body = {**CHAT, "emulate": {"outcome": outcome, "error": "CUDA out of memory"}}
    job_id = stack.enqueue("/chat/completions", body)["id"]
    job = stack.wait_final([job_id])[job_id]
    assert job["status"] == status
    assert job["runpod"]["status"] == outcome
    assert job["error"]["code"] == code
    assert job["result"] is None
    if outcome in ("FAILED", "TIMED_OUT"):
        assert job["error"]["message"] == "CUDA out of memory"


def test_job_runpod_forgot_ends_failed_as_expired(make_stack):
    stack = make_stack(callbacks=False)
    job_id = stack.enqueue("/chat/completions", {**CHAT, "emulate": {"forget": True}})["id"]
    job = stack.wait_final([job_id])[job_id]
    assert job["status"] == "failed"
    assert job["error"]["code"] == "runpod_job_expired"
    assert job["runpod"]["status"] == "NOT_FOUND"


def test_client_cancel_cancels_at_runpod_too(make_stack, emulator):
    stack = make_stack(callbacks=True)
    job_id = stack.enqueue("/chat/completions", {**CHAT, "emulate": {"delay": 30}})["id"]
    runpod_id = wait_until(lambda: stack.job(job_id)["runpod"]["id"], message="the job was not submitted")
    answer = stack.http.post(f"{stack.base_url}/v1/jobs/{job_id}/cancel", timeout=5)
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    wait_until(lambda: emulator.jobs[runpod_id].status == "CANCELLED", message="not cancelled at RunPod")
    assert stack.job(job_id)["status"] == "cancelled"


def test_429_and_503_from_runpod_are_retried_and_the_job_completes(make_stack, emulator):
    stack = make_stack(callbacks=False)
    requests.post(f"{emulator.base_url}/_emulator/faults", json={"run": [429, 503, 503], "status": [503, 429]}, timeout=5)
    job_id = stack.enqueue("/chat/completions", CHAT)["id"]
    job = stack.wait_final([job_id], timeout=30)[job_id]
    assert job["status"] == "completed"
    assert emulator.faults["run"] == type(emulator.faults["run"])()  # every injected fault was met
    assert emulator.faults["status"] == type(emulator.faults["status"])()


def test_runpod_unavailable_for_a_while_keeps_the_job_queued_then_completes(make_stack, emulator):
    stack = make_stack(callbacks=True)
    requests.post(f"{emulator.base_url}/_emulator/faults", json={"run": [503] * 5}, timeout=5)
    job_id = stack.enqueue("/chat/completions", CHAT)["id"]
    wait_until(lambda: len(emulator.faults["run"]) <= 2, message="the faults were not met")
    assert stack.job(job_id)["status"] == "queued"  # not dropped, not failed
    job = stack.wait_final([job_id], timeout=40)[job_id]
    assert job["status"] == "completed"


def test_sigkilled_worker_loses_no_job_once_a_worker_runs_again(make_stack, emulator):
    stack = make_stack(callbacks=True, workers=1)
    ids = [stack.enqueue("/chat/completions", {**CHAT, "emulate": {"delay": 0.5}})["id"] for _ in range(60)]
    # Kill the worker while jobs are in flight: some submitted, some still queued.
    wait_until(lambda: sum(stack.job(i)["status"] != "queued" for i in ids[:20]) >= 5, every=0.02)
    stack.kill_workers(signal.SIGKILL)
    unfinished = [i for i in ids if stack.job(i)["status"] not in ("completed",)]
    assert unfinished, "the kill came too late to test anything"
    stack.start_worker()
    jobs = stack.wait_final(ids, timeout=60)
    assert [j["status"] for j in jobs.values()].count("completed") == len(ids)


def test_status_polls_stay_within_the_budget(make_stack, emulator):
    stack = make_stack(callbacks=False, status_budget_per_10s=5, poll_min_interval=0.05)
    before = status_calls(emulator)
    ids = [stack.enqueue("/embeddings", {"input": "x", "emulate": {"delay": 30}})["id"] for _ in range(20)]
    time.sleep(3)
    window_start = int(time.time() // 10)
    made = status_calls(emulator) - before
    # 20 jobs polled every ~0.05-1 s would make dozens of calls; the budget allows 5 per
    # 10-second window (at most two windows touched in 3 s).
    assert 0 < made <= 10, made
    assert all(stack.job(i)["status"] in ("submitted", "running") for i in ids)
    assert window_start  # the windows are wall-clock aligned


def test_readyz_is_ready_once_a_worker_runs(make_stack):
    stack = make_stack(workers=0)
    assert stack.http.get(f"{stack.base_url}/readyz", timeout=5).status_code == 503
    stack.start_worker()
    wait_until(lambda: stack.http.get(f"{stack.base_url}/readyz", timeout=5).status_code == 200, every=0.2)
    answer = stack.http.get(f"{stack.base_url}/readyz", timeout=5).json()
    assert answer["status"] == "ready" and answer["checks"]["workers"] == 1
