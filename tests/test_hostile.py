"""podrelay attacked as a hostile API key would: each finding of the security review, with the
request that broke it. Every one of these failed before its fix."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from integration.redis.group_commit import GroupCommit, _Batch, _Call
from integration.resources import of
from tests.support import wait_until

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def post_raw(client, path: str, text: str, auth: dict):
    return client.post(f"/v1{path}", data=text.encode("utf-8"), headers={**auth, "Content-Type": "application/json"})


@pytest.mark.parametrize(
    "text, param",
    [
        ('{"messages": [{"role": "user", "content": "hi"}], "model": "\\ud800"}', "model"),
        ('{"messages": [{"role": "user", "content": "\\udfff tail"}]}', "messages[0].content"),
        ('{"messages": [{"role": "user", "content": "hi"}], "top_k": NaN}', "top_k"),
        ('{"messages": [{"role": "user", "content": "hi"}], "x": [Infinity]}', "x[0]"),
    ],
)
def test_strings_that_cannot_be_stored_and_non_numbers_are_400_naming_the_field(client, auth, text, param):
    answer = post_raw(client, "/chat/completions", text, auth)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["error"]["param"] == param


def test_json_nested_a_thousand_deep_is_a_400(client, auth):
    text = '{"messages": [{"role": "user", "content": "hi"}], "deep": ' + "[" * 1000 + "]" * 1000 + "}"
    answer = post_raw(client, "/chat/completions", text, auth)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_json"


def test_json_nested_past_the_limit_but_within_orjsons_is_a_400_naming_where(client, auth):
    text = '{"messages": [{"role": "user", "content": "hi"}], "deep": ' + "[" * 70 + "]" * 70 + "}"
    answer = post_raw(client, "/chat/completions", text, auth)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_json"
    assert answer.get_json()["error"]["param"].startswith("deep[0]")


def test_an_integer_past_64_bits_reaches_the_worker_exact(client, auth, app):
    big = 123456789012345678901234567890  # the fast JSON reader would make it a float
    text = '{"messages": [{"role": "user", "content": "hi"}], "top_k": ' + str(big) + "}"
    answer = post_raw(client, "/chat/completions", text, auth)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert of(app).jobs.get(answer.get_json()["id"]).input["top_k"] == big


def test_a_lone_surrogate_in_a_webhook_description_is_a_400(client, auth):
    text = '{"url": "https://93.184.215.14/hooks", "description": "\\ud83d"}'
    answer = client.post("/v1/webhooks", data=text, headers={**auth, "Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.get_json()["error"]["param"] == "description"


def test_one_callers_unencodable_script_call_fails_only_that_caller(redis_url):
    conn = redis.Redis.from_url(redis_url)
    commits = GroupCommit(conn)
    script = conn.register_script("return ARGV[1]")
    conn.script_load(script.script)
    batch = _Batch()  # one pipeline
    batch.calls += [_Call(script, [], ["a"]), _Call(script, [], ["\ud800"]), _Call(script, [], ["b"])]
    commits._commit(batch)
    assert batch.done.is_set()
    assert batch.calls[0].answer == b"a" and batch.calls[2].answer == b"b"
    assert isinstance(batch.calls[1].answer, UnicodeEncodeError)


def test_an_over_long_last_event_id_is_a_400_not_a_broken_stream(client, auth):
    job_id = client.post("/v1/chat/completions", json=CHAT, headers=auth).get_json()["id"]
    answer = client.get(f"/v1/jobs/{job_id}/events", headers={**auth, "Last-Event-ID": "99999999999999999999-0"})
    assert answer.status_code == 400 and answer.get_json()["error"]["param"] == "Last-Event-ID"


@pytest.mark.parametrize(
    "route, body, field",
    [
        ("/images/generations", {"prompt": "x", "n": 1, "num_images": 1000}, "num_images"),
        ("/images/generations", {"prompt": "x", "size": "512x512", "width": 16384}, "width"),
        ("/videos/generations", {"prompt": "x", "duration": 1, "num_frames": 100000}, "num_frames"),
        ("/chat/completions", {**CHAT, "max_tokens": 10, "sampling_params": {"max_tokens": 100000}}, "sampling_params"),
    ],
)
def test_pass_through_can_never_change_what_was_priced(client, auth, app, route, body, field):
    answer = client.post(f"/v1{route}", json=body, headers=auth)
    assert answer.status_code == 400 and answer.get_json()["error"]["param"] == field
    assert of(app).redis.zcard("pr:pending") == 0  # nothing stored, nothing sent


def test_direct_route_jobs_are_priced_reserved_and_charged(make_stack):
    from integration.accounts.keys import create_key, set_limits

    stack = make_stack()
    key, secret = create_key(stack.redis, "budgeted")
    set_limits(stack.redis, key.id, budget="0.008", rpm="unlimited")  # one job of 2 images: 0.006
    headers = {"Authorization": f"Bearer {secret}"}
    url = f"{stack.base_url}/v1/runpod/images/run"
    first = stack.http.post(url, json={"input": {"prompt": "x", "num_images": 2}}, headers=headers, timeout=10)
    assert first.status_code == 200, first.text
    refused = stack.http.post(url, json={"input": {"prompt": "x", "num_images": 2}}, headers=headers, timeout=10)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "budget_exceeded"  # the first reserved it
    job_url = f"{stack.base_url}/v1/jobs/{first.json()['podrelay_job_id']}"
    wait_until(lambda: stack.http.get(job_url, headers=headers, timeout=10).json()["status"] == "completed")
    usage = stack.http.get(f"{stack.base_url}/v1/usage", headers=headers, timeout=10).json()["usage"]
    assert usage["spend"] > 0 and usage["completed_jobs"] == 1 and usage["jobs_in_flight"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://[::127.0.0.1]/hooks",
        "https://[::7f00:1]/hooks",
        "https://[fec0::1]/hooks",
        "https://[::ffff:10.0.0.1]/hooks",
        "https://93.184.215.14\\@127.0.0.1/hooks",
    ],
)
def test_webhook_urls_must_be_globally_routable_however_spelled(client, auth, url):
    answer = client.post("/v1/webhooks", json={"url": url}, headers=auth)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] in ("invalid_webhook_url", "validation_error")


def test_deliveries_refuse_what_registration_refuses_with_the_same_check():
    import requests
    from requests_hardened.ip_filter import InvalidIPAddress

    from integration.webhooks import outbound

    http = outbound.session(allow_private=False)
    for address in ("[::7f00:1]", "[fec0::1]", "[::127.0.0.1]"):
        with pytest.raises((InvalidIPAddress, requests.ConnectionError)) as raised:
            http.post(f"https://{address}/hooks", data=b"{}", timeout=(2, 2))
        assert isinstance(raised.value, InvalidIPAddress) or "Forbidden" in str(raised.value)


def test_signed_tokens_in_paths_are_masked_in_logs():
    import logging

    from integration.logs import JsonFormatter, SafeFormatter

    line = (
        "POST /callbacks/runpod/ImFiYyI.s4jPZHZNZPm69S3om -> 200; GET /downloads/WyJqIiwwXQ.aBcD?x=1 -> 200; "
        "GET /files/ImpvYi9pbi1pbWFnZS5wbmci.aw9Z/in-image.png -> 200"
    )
    record = logging.LogRecord("t", logging.INFO, __file__, 1, line, None, None)
    for formatter in (SafeFormatter(), JsonFormatter()):
        text = formatter.format(record)
        assert "s4jPZHZNZPm69S3om" not in text and "WyJqIiwwXQ" not in text and "ImpvYi9pbi1" not in text, text
        assert "/callbacks/runpod/[redacted]" in text and "/downloads/[redacted]" in text
        assert "/files/[redacted]/in-image.png" in text


def test_downloads_are_never_sniffed_and_the_docs_page_keeps_no_key(client, auth, app):
    import base64

    from integration.jobs.record import UNFINISHED, JobStatus

    job_id = client.post("/v1/images/generations", json={"prompt": "x"}, headers=auth).get_json()["id"]
    store = of(app).jobs
    html = base64.b64encode(b"<html><script>alert(1)</script></html>").decode()
    store.transition(store.get(job_id), JobStatus.COMPLETED, UNFINISHED, result={"created": 1, "data": [{"b64_json": html}]})
    answer = client.get(f"/v1/jobs/{job_id}/download", headers=auth)
    assert answer.status_code == 200 and answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert "persistAuthorization: false" in client.get("/docs").get_data(as_text=True)


def test_a_websocket_to_another_keys_job_is_refused_before_the_upgrade(make_stack):
    import socket as sockets

    from integration.accounts.keys import create_key

    stack = make_stack(workers=0)
    job_id = stack.enqueue("/chat/completions", CHAT)["id"]
    _, other = create_key(stack.redis, "other")
    host, port = stack.base_url.removeprefix("http://").split(":")
    request = (
        f"GET /v1/jobs/{job_id}/ws HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {other}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with sockets.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request.encode())
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"404", status_line


def test_jobs_removed_by_a_purge_end_cancelled_saying_so(make_stack, emulator):
    from integration.accounts.keys import create_key

    stack = make_stack(callbacks=False, poll_min_interval=0.1)
    _, admin_key = create_key(stack.redis, "operator", admin=True)
    emulator.steer("ep-embeddings", {"queue": 60})  # stays IN_QUEUE at RunPod
    job_id = stack.enqueue("/embeddings", {"input": "x"})["id"]
    wait_until(lambda: stack.job(job_id)["status"] == "submitted")
    purge = stack.http.post(
        f"{stack.base_url}/v1/runpod/embeddings/purge-queue", headers={"Authorization": f"Bearer {admin_key}"}, timeout=10
    )
    assert purge.status_code == 200 and purge.json()["removed"] == 1
    job = stack.wait_final([job_id])[job_id]
    assert job["status"] == "cancelled" and "purge-queue" in job["error"]["message"]


def test_subscriptions_are_capped_per_key_and_one_per_url(client, auth, app):
    url = "https://93.184.215.14/hooks/{}"
    created = [client.post("/v1/webhooks", json={"url": url.format(n)}, headers=auth) for n in range(20)]
    assert [r.status_code for r in created] == [201] * 20
    over = client.post("/v1/webhooks", json={"url": url.format(99)}, headers=auth)
    assert over.status_code == 403 and over.get_json()["error"]["code"] == "subscription_limit_reached"
    client.delete(f"/v1/webhooks/{created[0].get_json()['id']}", headers=auth)
    again = client.post("/v1/webhooks", json={"url": url.format(1)}, headers=auth)
    assert again.status_code == 409 and again.get_json()["error"]["param"] == "url"
    moved = client.patch(f"/v1/webhooks/{created[2].get_json()['id']}", json={"url": url.format(3)}, headers=auth)
    assert moved.status_code == 409


class Trickler:
    """A hostile receiver on loopback: accepts and then answers one byte every `every` seconds
    (or never, with `every=None`), for at most `lasting` seconds."""

    def __init__(self, every: float | None = 1.0, lasting: float = 60.0):
        import socket as sockets

        self.accepted: list[float] = []
        self.server = sockets.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hooks"
        self.every, self.lasting, self.open = every, lasting, True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.open:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn):
        end = time.monotonic() + self.lasting
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" if self.every else b"":
                if not self.open or time.monotonic() > end:
                    break
                conn.sendall(bytes([byte]))
                time.sleep(self.every)
            while self.every is None and self.open and time.monotonic() < end:
                time.sleep(0.1)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.open = False
        self.server.close()


@pytest.fixture
def tricklers():
    made: list[Trickler] = []

    def make(**kwargs) -> Trickler:
        made.append(Trickler(**kwargs))
        return made[-1]

    yield make
    for trickler in made:
        trickler.close()


def test_a_receiver_trickling_its_answer_is_cut_at_the_attempts_deadline(redis_url, emulator, tricklers):
    from app import create_app
    from integration.webhooks.deliveries import Delivery
    from tests.support import make_settings
    from workers.deliver import Courier

    resources = of(create_app(make_settings(redis_url, emulator.base_url, webhook_allow_private=True, webhook_timeout=2.0)))
    slow = tricklers(every=0.5)  # each byte well within a read time-out; the whole answer takes 20 s
    delivery = Delivery(
        id="dlv_slow", event_id="msg_s", event_type="job.completed", key_id="k", url=slow.url, body="{}", created=time.time()
    )
    resources.deliveries.create(delivery)
    started = time.monotonic()
    Courier(resources).send(delivery)
    attempt = resources.deliveries.attempts("dlv_slow")[0]
    assert attempt["error"] == "no complete answer within 2 s (WEBHOOK_TIMEOUT)" and attempt["status_code"] is None
    assert time.monotonic() - started < 15  # cut near 2 s, not after the receiver's 20 s


def test_one_keys_slow_receivers_do_not_hold_another_keys_deliveries(make_stack, tricklers, receivers):
    from integration.accounts.keys import create_key, set_limits

    stack = make_stack(webhook_concurrency=8, webhook_concurrency_per_key=2, webhook_timeout=10.0)
    hostile = tricklers(every=None)  # accepts, never answers
    for n in range(10):
        answer = stack.http.post(f"{stack.base_url}/v1/webhooks", json={"url": f"{hostile.url}/{n}"}, timeout=10)
        assert answer.status_code == 201
    ids = [stack.enqueue("/embeddings", {"input": str(n)})["id"] for n in range(3)]  # 30 deliveries
    stack.wait_final(ids)
    wait_until(lambda: len(hostile.accepted) >= 2)  # the hostile key's two slots are taken
    key, secret = create_key(stack.redis, "neighbour")
    set_limits(stack.redis, key.id, rpm="unlimited")
    fast = receivers()
    headers = {"Authorization": f"Bearer {secret}"}
    assert (
        stack.http.post(f"{stack.base_url}/v1/webhooks", json={"url": fast.url}, headers=headers, timeout=10).status_code == 201
    )
    stack.http.post(f"{stack.base_url}/v1/embeddings", json={"input": "mine"}, headers=headers, timeout=10)
    fast.wait_for(1, timeout=30)
    first_hostile_attempt_ends = hostile.accepted[0] + 10.0
    assert time.monotonic() < first_hostile_attempt_ends  # arrived while the hostile key's attempts still hang
    assert len(hostile.accepted) <= 2  # and the hostile key never had more than its two in flight


def test_held_connections_are_bounded_per_key(make_stack):
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from integration.accounts.keys import create_key, set_limits

    stack = make_stack(workers=0, held_per_key=3)  # no worker: every wait runs its course
    url = f"{stack.base_url}/v1/chat/completions"

    def held(headers):
        return requests.post(url, json=CHAT, headers={**headers, "Prefer": "wait=4"}, timeout=30)

    mine = {"Authorization": f"Bearer {stack.key}"}
    with ThreadPoolExecutor(5) as pool:
        answers = [pool.submit(held, mine) for _ in range(5)]
        time.sleep(1.5)
        key, secret = create_key(stack.redis, "neighbour")
        set_limits(stack.redis, key.id, rpm="unlimited")
        neighbour = held({"Authorization": f"Bearer {secret}"})
        codes = sorted(a.result().status_code for a in answers)
    assert codes == [202, 202, 202, 429, 429]
    assert neighbour.status_code == 202  # another key's held request is not refused


def test_revoking_a_key_ends_its_streams_and_held_requests(make_stack):
    import requests

    from integration.accounts.keys import create_key, revoke_key, set_limits

    stack = make_stack(workers=0)
    key, secret = create_key(stack.redis, "leaving")
    set_limits(stack.redis, key.id, rpm="unlimited")
    headers = {"Authorization": f"Bearer {secret}"}
    job_id = requests.post(f"{stack.base_url}/v1/chat/completions", json=CHAT, headers=headers, timeout=10).json()["id"]
    stream = requests.get(f"{stack.base_url}/v1/jobs/{job_id}/events", headers=headers, stream=True, timeout=60)
    result: dict = {}

    def wait():
        held = requests.post(
            f"{stack.base_url}/v1/chat/completions", json=CHAT, headers={**headers, "Prefer": "wait=60"}, timeout=90
        )
        result["status"], result["at"] = held.status_code, time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(1.0)
    revoke_key(stack.redis, key.id)
    revoked_at = time.monotonic()
    text = b"".join(stream.iter_content(None)).decode()
    stream_ended = time.monotonic()
    waiter.join(timeout=60)
    assert "event: revoked" in text
    assert result["status"] == 202
    assert stream_ended - revoked_at < 30 and result["at"] - revoked_at < 30  # not the 60 s the wait asked for


@pytest.mark.parametrize(
    "command",
    [
        ["-c", "import app; app.web"],  # what gunicorn serves (the Procfile's `app:web`)
        ["-m", "flask", "--app", "app", "worker"],
        ["-m", "flask", "--app", "app", "start"],
    ],
)
def test_the_web_worker_and_start_refuse_to_run_without_a_secret(command):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "PODRELAY_ENV")}
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    done = subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "SECRET_KEY must be set" in done.stderr and "Traceback" not in done.stderr, done.stderr
    keys = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "n8n-spec", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert keys.returncode == 0, keys.stderr  # commands that sign nothing need no secret


def test_gunicorns_own_refusals_come_in_the_error_envelope(redis_url, emulator, tmp_path, procfile_webs):
    import socket as sockets

    from bench.harness import free_port
    from tests.support import make_settings, settings_env

    port = free_port()
    procfile_webs(settings_env(make_settings(redis_url, emulator.base_url)), port, tmp_path / "web.log")
    # Just past gunicorn's limits (4094 bytes of request line, 100 header fields), read whole.
    for request in (
        f"GET /{'x' * 4200} HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n" + "X-A: b\r\n" * 120 + "\r\n",
    ):
        with sockets.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(request.encode())
            answer = b""
            try:
                while chunk := conn.recv(65536):
                    answer += chunk
            except ConnectionResetError:
                pass  # gunicorn closes after its answer
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split()[1] in (b"414", b"431", b"400"), head
        assert b"application/json" in head and json.loads(body)["error"]["code"]


def test_direct_routes_spend_the_same_runpod_budgets_as_the_trackers(make_stack):
    stack = make_stack(workers=0, status_budget_per_10s=10)  # one /status a second per endpoint
    run = stack.http.post(f"{stack.base_url}/v1/runpod/embeddings/run", json={"input": {"input": "x"}}, timeout=10).json()
    codes = [stack.http.get(f"{stack.base_url}/v1/runpod/embeddings/status/{run['id']}", timeout=10) for _ in range(5)]
    refused = [c for c in codes if c.status_code == 429]
    assert len(refused) >= 3 and refused[0].json()["error"]["code"] == "runpod_budget_exceeded"
