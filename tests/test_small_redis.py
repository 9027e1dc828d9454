"""A Redis as small as Heroku's smallest plan (`maxclients 20`): the Procfile's web process
and a worker stay within it under 40 held requests, and at the limit they say so in one
line, `/readyz` does not call them healthy, and they recover by themselves."""

from __future__ import annotations

import collections
import json
import subprocess
import threading

import pytest
import redis
import requests

from bench.harness import free_port
from tests.support import DEBIAN_REDIS, Stack, make_settings, pings, stop_process, wait_until

MAXCLIENTS = 20  # Heroku Redis's smallest plan

pytestmark = pytest.mark.stack


@pytest.fixture
def small_redis(tmp_path):
    """A redis:// URL of a Redis of the test's own that accepts at most MAXCLIENTS connections."""
    port = free_port()
    server = subprocess.Popen(
        [DEBIAN_REDIS, "--port", str(port), "--maxclients", str(MAXCLIENTS), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=open(tmp_path / "redis.log", "w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: pings(url), message="the small Redis did not start")
        yield url
    finally:
        stop_process(server)


def _podrelay_connections(watch: redis.Redis) -> dict[str, int]:
    """Connections per podrelay process (its connections are named `podrelay-<pid>`), and RQ's."""
    names = [client.get("name") or "" for client in watch.client_list() if client["id"] != watch.client_id()]
    return dict(collections.Counter(name if name.startswith("podrelay-") else "rq-or-other" for name in names))


def test_forty_held_requests_and_a_worker_stay_within_twenty_connections(small_redis, slow_emulator, tmp_path):
    emulator = slow_emulator(3.0)  # jobs of 3 s: the 40 requests are held at once
    settings = make_settings(small_redis, emulator.base_url, public_base_url=None)
    stack = Stack(settings, emulator, tmp_path, procfile=True)
    stack.redis.connection_pool.disconnect()  # the test's own client: only `watch` from here on
    watch = redis.Redis.from_url(small_redis, single_connection_client=True)
    answers: list[requests.Response | Exception] = []
    try:
        stack.start_worker()
        wait_until(lambda: stack.http.get(f"{stack.base_url}/readyz", timeout=10).status_code == 200, 60)

        def held(n: int) -> None:
            body = {"messages": [{"role": "user", "content": f"held {n}"}]}
            try:
                answers.append(stack.http.post(
                    f"{stack.base_url}/v1/chat/completions", json=body, headers={"Prefer": "wait=60"}, timeout=120
                ))  # fmt: skip
            except requests.RequestException as error:
                answers.append(error)

        threads = [threading.Thread(target=held, args=(n,)) for n in range(40)]
        for thread in threads:
            thread.start()
        peak = 0
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, sum(_podrelay_connections(watch).values()))
            threads[0].join(0.05)
        for thread in threads:
            thread.join()

        assert peak <= MAXCLIENTS - 1, f"podrelay opened {peak} connections (the test's one is apart)"
        statuses = collections.Counter(getattr(answer, "status_code", repr(answer)) for answer in answers)
        assert set(statuses) <= {200, 202}, statuses
        ids = [answer.json()["id"] for answer in answers]
        assert len(set(ids)) == 40
        finals = stack.wait_final(ids, timeout=120)
        assert {job["status"] for job in finals.values()} == {"completed"}
        logs = (tmp_path / "web.log").read_text() + (tmp_path / "worker-0.log").read_text()
        assert "max number of clients" not in logs and "connection limit" not in logs
    finally:
        stack.close()


def test_at_the_limit_it_says_so_and_recovers(small_redis, emulator, tmp_path):
    settings = make_settings(small_redis, emulator.base_url, public_base_url=None)
    stack = Stack(settings, emulator, tmp_path, procfile=True)
    wait_until(lambda: stack.http.get(f"{stack.base_url}/healthz", timeout=10).status_code == 200, 60)
    fillers: list[redis.Redis] = []
    try:
        while True:  # take every connection the web process has not opened yet
            try:  # a single-connection client connects as it is made
                filler = redis.Redis.from_url(small_redis, single_connection_client=True)
            except redis.exceptions.ConnectionError as error:
                assert "max number of clients" in str(error)
                break
            fillers.append(filler)
        stack.start_worker()  # it cannot connect

        def readyz() -> dict:
            return stack.http.get(f"{stack.base_url}/readyz", timeout=10).json()

        log = tmp_path / "worker-0.log"
        wait_until(lambda: log.exists() and "Redis is at its connection limit" in log.read_text(), 60)
        assert readyz()["status"] == "not_ready"
        worker_lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        limit_lines = [line for line in worker_lines if "connection limit" in line["message"]]
        assert limit_lines and all("exception" not in line for line in limit_lines), limit_lines[:2]

        for filler in fillers:
            filler.close()
        wait_until(lambda: readyz()["status"] == "ready", 90, "the worker did not recover once connections freed")
        job_id = stack.enqueue("/chat/completions", {"messages": [{"role": "user", "content": "after the limit"}]})["id"]
        assert stack.wait_final([job_id], timeout=60)[job_id]["status"] == "completed"
    finally:
        for filler in fillers:
            filler.close()
        stack.close()
