"""`Prefer: wait` on the enqueue routes: the finished job in time, else the 202; no polling."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from integration.jobs.waiting import preferred_wait
from tests.support import wait_until

CHAT = {"messages": [{"role": "user", "content": "Summarize this"}]}


@pytest.mark.parametrize(
    "header, expected",
    [
        ("wait=5", 5),
        ("wait", 60),
        ("respond-async, wait=10", 10),
        ("wait=600", 60),
        ("WAIT = 3", 3),
        ("handling=lenient", None),
        (None, None),
    ],
)
def test_prefer_header_is_read_as_rfc_7240_says(header, expected):
    assert preferred_wait(header, cap=60) == expected


def test_prefer_wait_answers_the_finished_job_when_it_ends_in_time(make_stack):
    stack = make_stack()
    started = time.time()
    answer = stack.http.post(f"{stack.base_url}/v1/chat/completions", json=CHAT, headers={"Prefer": "wait=60"}, timeout=90)
    assert answer.status_code == 200
    job = answer.json()
    assert job["object"] == "job" and job["status"] == "completed"
    assert job["result"]["choices"][0]["message"]["content"] == "Echo: Summarize this"
    assert answer.headers["Preference-Applied"] == "wait=60"
    assert answer.headers["Location"] == f"/v1/jobs/{job['id']}"
    # Woken by the job's end, not by the wait running out (a job of ~0.2 s; 60 s asked).
    assert time.time() - started < 45


def test_prefer_wait_that_runs_out_answers_the_202(make_stack):
    stack = make_stack()
    started = time.time()
    body = {**CHAT, "emulate": {"delay": 10}}
    answer = stack.http.post(f"{stack.base_url}/v1/chat/completions", json=body, headers={"Prefer": "wait=1"}, timeout=15)
    elapsed = time.time() - started
    assert answer.status_code == 202
    assert answer.json()["object"] == "chat.completion.enqueue"
    assert answer.headers["Location"] == f"/v1/jobs/{answer.json()['id']}"
    assert 0.9 < elapsed < 10  # held for the wait asked, not for the job's 10 s


def test_waiting_requests_do_not_poll_redis(make_stack):
    stack = make_stack(workers=0)  # nothing moves the jobs: the requests just wait
    conn = redis.Redis.from_url(stack.settings.redis_url)
    answers: list[int] = []

    def wait_for_one() -> None:
        answers.append(
            stack.http.post(
                f"{stack.base_url}/v1/embeddings", json={"input": "x"}, headers={"Prefer": "wait=15"}, timeout=60
            ).status_code
        )

    threads = [threading.Thread(target=wait_for_one) for _ in range(20)]
    for thread in threads:
        thread.start()
    wait_until(lambda: stack.resources.waiter.waiting == 20, 10, "the 20 requests are not all waiting")
    # Each waiter reads its job once it has subscribed; on a busy machine that can come a
    # while after it registered. Polling would never settle: count once a second is quiet.
    last = [_reads(conn)]

    def settled() -> bool:
        time.sleep(1.0)
        previous, last[0] = last[0], _reads(conn)
        return last[0] - previous <= 2

    wait_until(settled, 10, "Redis never went quiet while the requests waited")
    before = _reads(conn)
    time.sleep(1.5)
    during = _reads(conn) - before
    for thread in threads:
        thread.join()
    assert answers == [202] * 20
    print(f"redis commands in 1.5 s while 20 requests waited: {during}")
    assert during <= 5, f"{during} Redis commands in 1.5 s while 20 requests waited"


NOT_READS = {"cmdstat_info", "cmdstat_hincrbyfloat"}  # this count itself, and the metrics' flush each second


def _reads(conn: redis.Redis) -> int:
    """Commands the server has run, but INFO and the metrics flush: what polling would add to."""
    return sum(stats["calls"] for name, stats in conn.info("commandstats").items() if name not in NOT_READS)
