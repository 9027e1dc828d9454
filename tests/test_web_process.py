"""The Procfile's `web` process as deployed (gunicorn, gevent workers): held requests, event
streams, and job writes committed in groups by concurrent requests."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from integration.accounts.keys import create_key, set_limits
from tests.support import stop_process
from tests.test_events import SLOW_CHAT, read_sse, read_ws

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def test_one_web_process_holds_hundreds_of_waiting_requests(make_stack):
    # No worker: every job stays queued, so every request is held its full `wait=6`. One key
    # holds all 300 here, so its bound on held connections is lifted (it has its own test).
    stack = make_stack(workers=0, procfile=True, web_env={"WEB_CONCURRENCY": "1"}, held_per_key=1000)
    url = f"{stack.base_url}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {stack.key}", "Prefer": "wait=6"}
    held = 300

    def call(_):
        return requests.post(url, json=CHAT, headers=headers, timeout=60)

    def timed_call(i):
        answer = call(i)
        return answer, time.monotonic()

    started = time.monotonic()
    with ThreadPoolExecutor(held) as pool:
        waiting = [pool.submit(timed_call, i) for i in range(held)]
        time.sleep(2)
        health = requests.get(f"{stack.base_url}/healthz", timeout=30)
        health_answered = time.monotonic()
        results = [f.result() for f in waiting]
    elapsed = time.monotonic() - started
    answers = [answer for answer, _ in results]

    assert health.status_code == 200
    # Not queued behind the held requests: answered before any of them was let go.
    assert health_answered < min(at for _, at in results)
    assert [a.status_code for a in answers] == [202] * held
    assert {a.headers["Preference-Applied"] for a in answers} == {"wait=6"}
    assert len({a.json()["id"] for a in answers}) == held
    # All held at once: a pool of 16 threads would need 300 / 16 * 6 s = 112 s.
    assert elapsed < 45, elapsed


def test_event_streams_through_the_web_process(make_stack):
    stack = make_stack(callbacks=False, procfile=True)
    job_id = stack.enqueue("/chat/completions", SLOW_CHAT)["id"]
    sse = stack.http.get(f"{stack.base_url}/v1/jobs/{job_id}/events", stream=True, timeout=20)
    messages = read_ws(stack, job_id)
    events = read_sse(sse)

    for stream in (messages, events):
        assert [m["data"]["status"] for m in stream if m["event"] == "status"][-1] == "completed"
        assert stream[-1]["event"] == "job" and stream[-1]["data"]["status"] == "completed"


def test_concurrent_creates_in_two_processes_keep_the_concurrency_limit_exact(make_stack):
    stack = make_stack(workers=0, procfile=True)  # the Procfile's two worker processes
    key, secret = create_key(stack.redis, "limited")
    set_limits(stack.redis, key.id, rpm="unlimited", concurrency="30")
    headers = {"Authorization": f"Bearer {secret}"}

    def call(_):
        return requests.post(f"{stack.base_url}/v1/chat/completions", json=CHAT, headers=headers, timeout=30)

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(call, range(80)))

    assert sorted(a.status_code for a in answers) == [202] * 30 + [429] * 50
    refused = [a.json()["error"] for a in answers if a.status_code == 429]
    assert {e["code"] for e in refused} == {"concurrency_limit_exceeded"}
    assert {e["details"]["in_flight"] for e in refused} == {30}
    accepted = {a.json()["id"] for a in answers if a.status_code == 202}
    assert len(accepted) == 30
    listed = stack.http.get(f"{stack.base_url}/v1/jobs", headers=headers, params={"limit": 100}, timeout=10).json()
    assert {job["id"] for job in listed["data"]} == accepted  # each answer names the job stored for it


def test_sigterm_answers_every_held_request_with_its_job(make_stack):
    import signal as signals

    stack = make_stack(workers=0, procfile=True, web_env={"WEB_CONCURRENCY": "1"})
    url = f"{stack.base_url}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {stack.key}", "Prefer": "wait=60"}
    with ThreadPoolExecutor(5) as pool:
        waiting = [pool.submit(requests.post, url, json=CHAT, headers=headers, timeout=90) for _ in range(5)]
        time.sleep(3)  # all held: no worker moves their jobs
        stack.web.send_signal(signals.SIGTERM)
        answers = [f.result() for f in waiting]
    assert [a.status_code for a in answers] == [202] * 5
    assert all(a.headers["Location"] == f"/v1/jobs/{a.json()['id']}" for a in answers)
    assert all(stack.redis.exists(f"pr:job:{a.json()['id']}") for a in answers)  # stored, and answered so


def test_json_logs_are_json_for_gunicorns_own_lines_too(make_stack, tmp_path):
    import json

    stack = make_stack(workers=0, procfile=True, web_env={"WEB_CONCURRENCY": "1"})
    stack.http.get(f"{stack.base_url}/healthz", timeout=10)
    stop_process(stack.web)
    lines = [line for line in (tmp_path / "web.log").read_text().splitlines() if line.strip()]
    assert any("Booting worker" in line for line in lines)  # gunicorn's own
    for line in lines:
        json.loads(line)  # every line, gunicorn's included


def _answer(sock) -> bytes:
    """One HTTP/1.1 answer read off `sock` (its status line)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n")[0]


def test_a_client_pipelining_requests_does_not_hold_up_other_connections(make_stack):
    # One web worker. A client with no key sends 3,000 requests at once on one connection:
    # each is a 404 that touches no socket, so its greenlet never had to wait for anything.
    # Another connection's requests are answered in turn meanwhile, not after all 3,000.
    import socket
    import threading

    stack = make_stack(workers=0, procfile=True, web_env={"WEB_CONCURRENCY": "1"})
    host, port = stack.base_url.removeprefix("http://").split(":")
    pipelined, flood = 3000, b"GET /v1/no-such-route HTTP/1.1\r\nHost: x\r\n\r\n"
    health = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with (
        socket.create_connection((host, int(port)), timeout=60) as other,
        socket.create_connection((host, int(port)), timeout=60) as hog,
    ):
        other.sendall(health)
        assert _answer(other) == b"HTTP/1.1 200 OK"
        answered = []

        def read_the_flood():
            data = b""
            while data.count(b"HTTP/1.1 404") < pipelined:
                data += hog.recv(1 << 20)
            answered.append(data.count(b"HTTP/1.1 404"))

        reader = threading.Thread(target=read_the_flood, daemon=True)
        reader.start()
        hog.sendall(flood * pipelined)
        served_meanwhile = 0
        while reader.is_alive():
            other.sendall(health)
            assert _answer(other) == b"HTTP/1.1 200 OK"
            served_meanwhile += 1
        reader.join(60)
    assert answered == [pipelined]
    # Before each turn, every connection with a request waiting gets its own: without turns
    # the other connection's first request was answered only after the whole flood (1 here).
    assert served_meanwhile >= 20, served_meanwhile


def test_bodies_of_a_stated_length_and_chunked_bodies_are_read_alike_and_both_limited(make_stack):
    # gunicorn's own reading, as clients send bodies: with Content-Length (read in one piece),
    # and chunked (read by werkzeug through its limited stream); each within MAX_BODY_BYTES or not.
    import json

    stack = make_stack(workers=0, procfile=True, web_env={"WEB_CONCURRENCY": "1"}, max_body_bytes=4096)
    url = f"{stack.base_url}/v1/chat/completions"
    auth = {"Authorization": f"Bearer {stack.key}", "Content-Type": "application/json"}
    body = json.dumps({"messages": [{"role": "user", "content": "é" * 100}], "max_tokens": 7}).encode()

    def chunked(data: bytes):
        yield data[:10]
        yield data[10:]

    stated = requests.post(url, data=body, headers=auth, timeout=30)
    streamed = requests.post(url, data=chunked(body), headers=auth, timeout=30)
    assert (stated.status_code, streamed.status_code) == (202, 202), (stated.text, streamed.text)
    for answer in (stated, streamed):
        job = requests.get(f"{stack.base_url}/v1/jobs/{answer.json()['id']}", headers=auth, timeout=30).json()
        assert json.loads(stack.redis.hget(f"pr:job:{job['id']}", "input"))["messages"][0]["content"] == "é" * 100

    big = json.dumps({"messages": [{"role": "user", "content": "x" * 5000}]}).encode()
    for data in (big, chunked(big)):
        refused = requests.post(url, data=data, headers=auth, timeout=30)
        assert refused.status_code == 413 and refused.json()["error"]["code"] == "request_too_large", refused.text

    # An idempotent retry is the same request whether its body came in one piece or in chunks.
    keyed = {**auth, "Idempotency-Key": "same-body"}
    first = requests.post(url, data=body, headers=keyed, timeout=30)
    again = requests.post(url, data=chunked(body), headers=keyed, timeout=30)
    assert first.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
