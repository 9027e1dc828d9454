"""Fixtures: a real Redis, the RunPod emulator over HTTP, podrelay on loopback, real workers.

Redis is `REDIS_URL` when set, else an embedded server in a temporary directory. Tests
use database 9, flushed before each test; web, workers and assertions share it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import requests
from werkzeug.serving import make_server

from app import create_app
from bench.harness import free_port, procfile_command
from emulator.server import _KeepAliveHandler, make_emulator_server
from emulator.state import Emulator
from integration.auth import create_key, set_limits
from integration.config import Settings
from integration.redis_connection import ensure_embedded, stop_embedded
from integration.surfaces import SURFACES

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_KEY = "emulator-test-key"
ENDPOINTS = {name.upper(): f"ep-{name}" for name in SURFACES}


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


@pytest.fixture(scope="session")
def emulator():
    state = Emulator(api_key=EMULATOR_KEY, queue_time=0.05, run_time=0.1)
    server = make_emulator_server(emulator=state)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.base_url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()


def make_settings(redis_url: str, emulator_url: str, **changes) -> Settings:
    base = Settings(
        redis_url=redis_url,
        runpod_api_key=EMULATOR_KEY,
        runpod_api_base=f"{emulator_url}/v2",
        endpoints=dict(ENDPOINTS),
        secret_key="test-secret",
        environment="test",
        poll_min_interval=0.1,
        poll_max_interval=1.0,
        lease_seconds=3.0,
        retry_base=0.2,
        callback_poll_after=60.0,
    )
    return base.with_changes(**changes)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a worker process read `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_ENDPOINT_")}
    env.update(
        REDIS_URL=settings.redis_url,
        RUNPOD_API_KEY=settings.runpod_api_key,
        RUNPOD_API_BASE=settings.runpod_api_base,
        SECRET_KEY=settings.secret_key,
        PUBLIC_BASE_URL=settings.public_base_url or "",
        POLL_MIN_INTERVAL=str(settings.poll_min_interval),
        POLL_MAX_INTERVAL=str(settings.poll_max_interval),
        LEASE_SECONDS=str(settings.lease_seconds),
        RUNPOD_RETRY_BASE=str(settings.retry_base),
        WEBHOOK_ALLOW_PRIVATE="1" if settings.webhook_allow_private else "",
        WEBHOOK_RETRY_SCHEDULE=",".join(str(s) for s in settings.webhook_retry_schedule),
        WEBHOOK_ROTATION_WINDOW=str(settings.webhook_rotation_window),
        WEBHOOK_DISABLE_AFTER=str(settings.webhook_disable_after),
        WEBHOOK_CONCURRENCY=str(settings.webhook_concurrency),
        WEBHOOK_CONCURRENCY_PER_ENDPOINT=str(settings.webhook_concurrency_per_endpoint),
        CALLBACK_POLL_AFTER=str(settings.callback_poll_after),
        RUNPOD_STATUS_BUDGET=str(settings.status_budget_per_10s),
        RUNPOD_RUN_BUDGET=str(settings.run_budget_per_10s),
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
    )
    env.update({f"RUNPOD_ENDPOINT_{k}": v for k, v in settings.endpoints.items()})
    return env


def procfile_web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """The Procfile's `web` process (gunicorn, as deployed) on `port`, once it answers."""
    env = {**env, "PORT": str(port), "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"}
    process = subprocess.Popen(
        ["sh", "-c", f"exec {procfile_command('web')}"], cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT
    )
    deadline = time.time() + 30
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except requests.ConnectionError:
            assert process.poll() is None and time.time() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)


class Stack:
    """podrelay on loopback: the web app over real HTTP, worker subprocesses, one API key.

    The web app is served in-process (werkzeug), or with `procfile=True` by the Procfile's
    own `web` command in a subprocess, as a deployment runs it.
    """

    def __init__(self, settings: Settings, emulator: Emulator, log_dir: Path, procfile: bool = False, **web_env: str):
        self.emulator = emulator
        self.log_dir = log_dir
        self.app = create_app(settings)
        self.web: subprocess.Popen | None = None
        if procfile:
            self.server = None
            port = free_port()
            self.base_url = f"http://127.0.0.1:{port}"
        else:
            self.server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_KeepAliveHandler)
            self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        if settings.public_base_url == "auto":
            settings = settings.with_changes(public_base_url=self.base_url)
            self.app.extensions["podrelay"].settings = settings
        self.settings = settings
        if procfile:
            self.web = procfile_web({**settings_env(settings), **web_env}, port, log_dir / "web.log")
        else:
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.resources = self.app.extensions["podrelay"]
        self.redis = self.resources.redis
        key, self.key = create_key(self.redis, "test")
        # The tests' own polling (every 20-100 ms) would meet the default rate limit;
        # the limits have their own tests, with their own keys.
        set_limits(self.redis, key.id, rpm="unlimited", concurrency="unlimited")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"
        self.workers: list[subprocess.Popen] = []

    def start_worker(self) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.workers)}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "worker"],
            cwd=ROOT,
            env=settings_env(self.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        return process

    def kill_workers(self, sig: int = signal.SIGKILL) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(sig)
                process.wait(timeout=15)

    def enqueue(self, route: str, body: dict) -> dict:
        response = self.http.post(f"{self.base_url}/v1{route}", json=body, timeout=10)
        assert response.status_code == 202, response.text
        return response.json()

    def job(self, job_id: str) -> dict:
        return self.http.get(f"{self.base_url}/v1/jobs/{job_id}", timeout=10).json()

    def wait_final(self, job_ids: list[str], timeout: float = 20.0) -> dict[str, dict]:
        """Each job once it is final; fails the test if one is not in time."""
        deadline = time.time() + timeout
        done: dict[str, dict] = {}
        while time.time() < deadline:
            for job_id in job_ids:
                if job_id not in done:
                    job = self.job(job_id)
                    if job["status"] in ("completed", "failed", "cancelled", "timed_out"):
                        done[job_id] = job
            if len(done) == len(job_ids):
                return done
            time.sleep(0.1)
        missing = [self.job(j) for j in job_ids if j not in done][:3]
        raise AssertionError(f"{len(job_ids) - len(done)} of {len(job_ids)} jobs not final in {timeout}s: {missing}")

    def close(self) -> None:
        self.kill_workers(signal.SIGKILL)  # quick; graceful stops are not what these tests check
        if self.server is not None:
            self.server.shutdown()
        if self.web is not None:
            self.web.terminate()
            self.web.wait(timeout=30)


@pytest.fixture
def make_stack(redis_url, emulator, tmp_path):
    stacks: list[Stack] = []

    def build(callbacks: bool = True, workers: int = 1, procfile: bool = False, web_env: dict | None = None, **changes) -> Stack:
        public = "auto" if callbacks else None
        # Receivers in tests listen on loopback; retries come fast.
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


class Receiver:
    """A webhook receiver on loopback that records each request and answers from a plan.

    `plan` holds the answers to give, in order: a status code, or (status, headers, delay
    seconds). When it runs out, the receiver answers 204.
    """

    def __init__(self, plan=None):
        self.requests: list[dict] = []
        self.plan = deque(plan or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append(
                        {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "at": time.time()}
                    )
                    answer = receiver.plan.popleft() if receiver.plan else 204
                status, headers, delay = answer if isinstance(answer, tuple) else (answer, {}, 0)
                time.sleep(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                body = b"" if status in (204, 304) else b"ok"  # 204 and 304 have no body (RFC 9110)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict]:
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.requests) < count:
            time.sleep(0.02)
        assert len(self.requests) >= count, f"receiver got {len(self.requests)} of {count} requests in {timeout}s"
        return self.requests


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
    _, secret = create_key(app.extensions["podrelay"].redis, "tester")
    return secret


@pytest.fixture
def auth(api_key):
    return {"Authorization": f"Bearer {api_key}"}
