"""Fixtures: a real Redis, the RunPod emulator over HTTP, podrelay on loopback, real workers.

Redis is `REDIS_URL` when set, else an embedded server in a temporary directory. Tests
use database 9, flushed before each test; web, workers and assertions share it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import redis
import requests

from app import create_app
from emulator.server import make_emulator_server
from emulator.state import Emulator
from integration.accounts.keys import create_key
from integration.redis.connection import ensure_embedded, stop_embedded
from integration.resources import of
from tests.support import EMULATOR_KEY, Receiver, Stack, free_port, make_settings, procfile_web, stop_process, wait_until

STACK_FIXTURES = {"make_stack", "own_redis", "procfile_webs", "s3_server", "s3_bucket"}  # tests that start processes


def pytest_collection_modifyitems(items):
    """Mark every test that starts a full stack (`-m "not stack"` is the fast loop)."""
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


def _with_db(url: str, db: int) -> str:
    if url.startswith("unix://"):
        return f"{url.split('?')[0]}?db={db}"
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory):
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    data_dir = tmp_path_factory.mktemp("redis")
    yield ensure_embedded(str(data_dir))
    stop_embedded(str(data_dir))


TEST_DB = 9  # never 0: a developer's REDIS_URL may hold real data there


@pytest.fixture
def redis_url(redis_base_url):
    """The test database of the test Redis, flushed before each test."""
    url = _with_db(redis_base_url, TEST_DB)
    redis.Redis.from_url(url).flushdb()
    return url


def _serve(state: Emulator):
    server = make_emulator_server(emulator=state)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.base_url = f"http://127.0.0.1:{server.server_port}"
    return server


@pytest.fixture(scope="session")
def emulator():
    server = _serve(
        state := Emulator(api_key=EMULATOR_KEY, queue_time=0.05, run_time=0.1)
    )  # `custom` unless a test names a worker
    yield state
    server.shutdown()


S3_ENV = {  # moto accepts any credentials; these name nothing real
    "AWS_ACCESS_KEY_ID": "podrelay-test",
    "AWS_SECRET_ACCESS_KEY": "podrelay-test-secret",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3-protocol server on loopback: moto's standalone server (the `moto[server]`
    package), started for the run and stopped at its end; its URL."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), timeout=60, message="moto_server did not start")
        yield url
    finally:
        stop_process(process)
        log.close()


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):
    """A fresh bucket on the S3 server, and the AWS variables that reach it (for this process
    and the processes a stack starts); its name."""
    import boto3

    for name, value in {**S3_ENV, "AWS_ENDPOINT_URL_S3": s3_server}.items():
        monkeypatch.setenv(name, value)
    bucket = f"podrelay-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def slow_emulator():
    """`slow_emulator(run_time)`: an emulator of the test's own whose jobs run that many seconds."""
    servers = []

    def start(run_time: float) -> Emulator:
        state = Emulator(api_key=EMULATOR_KEY, queue_time=0.05, run_time=run_time)
        servers.append(_serve(state))
        return state

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def make_stack(redis_url, emulator, tmp_path):
    stacks: list[Stack] = []

    def build(
        callbacks: bool = True,
        workers: int = 1,
        procfile: bool = False,
        web_env: dict | None = None,
        runpod_workers: dict | None = None,
        **changes,
    ) -> Stack:
        """`workers` worker processes; `runpod_workers` the RunPod workers behind the endpoints (settings' `workers`)."""
        public = "auto" if callbacks else None
        if runpod_workers is not None:
            changes["workers"] = runpod_workers
        # Receivers in tests listen on loopback; retries come fast.
        changes.setdefault("data_dir", str(tmp_path / "data"))  # the stack's file store among it
        changes.setdefault("webhook_allow_private", True)
        changes.setdefault("webhook_retry_schedule", (0, 0.3, 0.3, 0.3))
        settings = make_settings(redis_url, emulator.base_url, public_base_url=public, **changes)
        stack = Stack(settings, emulator, tmp_path, procfile, **(web_env or {}))
        for _ in range(workers):
            stack.start_worker()
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.close()
        for log in [*tmp_path.glob("worker-*.log"), *tmp_path.glob("web.log")]:
            text = log.read_text()
            if "Traceback" in text:
                print(f"--- {log.name}\n{text[-3000:]}")


@pytest.fixture
def procfile_webs():
    """Start Procfile web processes (`start(env, port, log)`); every one is stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
        started.append(procfile_web(env, port, log))
        return started[-1]

    yield start
    for process in started:
        stop_process(process)


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(plan=None) -> Receiver:
        made.append(Receiver(plan))
        return made[-1]

    yield make
    for receiver in made:
        receiver.server.shutdown()


@pytest.fixture
def app(redis_url, emulator):
    """The web app on a real Redis, without workers (the API's own behaviour)."""
    return create_app(make_settings(redis_url, emulator.base_url))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api_key(app):
    _, secret = create_key(of(app).redis, "tester")
    return secret


@pytest.fixture
def auth(api_key):
    return {"Authorization": f"Bearer {api_key}"}
