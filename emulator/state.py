"""The emulated RunPod Serverless endpoints: jobs, their timing, outputs and callbacks.

Jobs move IN_QUEUE -> IN_PROGRESS -> COMPLETED (or FAILED, TIMED_OUT, CANCELLED) on a
clock, as RunPod's do (runpod/docs, `serverless/endpoints/job-states.mdx`). Each endpoint
runs an emulated stock worker (`emulator/workers/`), whose handler decides the output,
the error and the stream pieces as the real one would, through runpod-python's rules
(`serverless.py`). RunPod's own behaviour follows its docs (`operation-reference.mdx`,
`send-requests.mdx`): `/stream` hands each piece out once; `/runsync` ids start with
`sync-` and its results are kept 1 minute, `/run`'s 30 minutes; bodies over 10 MB
(`/run`) or 20 MB (`/runsync`) are refused; finished jobs with a `webhook` are POSTed to
it, retried twice.

A test steers jobs with `steer(endpoint_id, controls)` (the next jobs on an endpoint), or
a `custom` endpoint's input may carry `emulate: {outcome, queue, delay, error, output,
forget}`: `outcome`, `error` and `output` replace what the worker would answer;
`answer_after` holds that `/run` call's answer for so many seconds; `progress` is a list of
reports the worker sends with `progress_update` during its run.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from emulator import serverless
from emulator.workers import WorkerEnv, parse

log = logging.getLogger(__name__)

FINAL = {"COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"}


@dataclass
class EmulatedJob:
    id: str
    endpoint_id: str
    input: dict
    webhook: str | None
    created: float
    start_at: float
    finish_at: float
    outcome: str = "COMPLETED"
    status: str = "IN_QUEUE"
    output: object = None
    error: str | None = None
    forget: bool = False
    retries: int = 0
    streamed: int = 0  # pieces already handed out by /stream
    controls: dict = field(default_factory=dict)
    result: serverless.Outcome | None = None  # what the worker's handler answered
    sync: bool = False  # made by /runsync: kept 1 minute once finished

    def payload(self) -> dict:
        body = {
            "id": self.id,
            "status": self.status,
            "delayTime": int(max(0.0, min(time.time(), self.start_at) - self.created) * 1000),
            "executionTime": int(max(0.0, min(time.time(), self.finish_at) - self.start_at) * 1000),
        }
        if self.status == "COMPLETED":
            body["output"] = self.output
        elif self.status in ("FAILED", "TIMED_OUT") and self.error:
            body["error"] = self.error
        elif self.status == "IN_PROGRESS" and self.controls.get("progress"):
            # runpod-python's progress_update (rp_progress.py) sends {"status": "IN_PROGRESS", "output": progress};
            # /status then shows the last one. The reports here are spread evenly over the run.
            reports = list(self.controls["progress"])
            done = (time.time() - self.start_at) / max(self.finish_at - self.start_at, 0.001)
            sent = int(done * (len(reports) + 1))
            if sent >= 1:
                body["output"] = reports[min(sent, len(reports)) - 1]
        return body

    @property
    def kept(self) -> float:
        """How long RunPod keeps the finished job: 1 minute for /runsync, 30 for /run."""
        return 60.0 if self.sync else 1800.0


class Emulator:
    """RunPod's endpoints in memory, on a clock; thread-safe."""

    def __init__(
        self,
        api_key: str | None = None,
        queue_time: float = 0.05,
        run_time: float = 0.2,
        forget_after: float = 1800,
        workers: dict[str, str] | None = None,
    ):
        self.api_key = api_key
        self.workers = dict(workers or {})  # endpoint id -> "worker-name[@version][+bucket|+nobucket]"; others: custom
        self.steering: dict[str, deque] = {}  # endpoint id -> controls for its next jobs
        self.files: dict[str, bytes] = {}  # what emulated workers uploaded to their bucket
        self.fetched: list[tuple[str, int]] = []  # what emulated workers downloaded: (URL, bytes)
        self.base_url = ""  # set once the server listens (bucket URLs point at it)
        self.queue_time = queue_time
        self.run_time = run_time
        self.forget_after = forget_after
        self.jobs: dict[str, EmulatedJob] = {}
        self.calls: Counter = Counter()  # (operation, http status)
        self.per_second: Counter = Counter()  # (operation, epoch second): RunPod's rate limits are per 10 s
        self.faults: dict[str, deque] = {}
        self.fault_rates: dict[str, float] = {}
        self.fault_counter = 0
        self.callbacks_sent = 0
        self.callbacks_failed = 0
        self._lock = threading.Lock()
        self._timers: list[tuple[float, str]] = []
        self._wake = threading.Condition(self._lock)
        self._senders = ThreadPoolExecutor(16, thread_name_prefix="emulator-callback")
        self._session = requests.Session()
        threading.Thread(target=self._callback_loop, name="emulator-clock", daemon=True).start()

    # -- faults ---------------------------------------------------------------------

    def next_fault(self, operation: str) -> int | None:
        """A status code to answer instead, when faults were set for this operation."""
        with self._lock:
            queued = self.faults.get(operation)
            if queued:
                return queued.popleft()
            rate = self.fault_rates.get(operation, 0.0)
            if rate:
                # Deterministic: every 1/rate-th call fails, alternating 429 and 503.
                self.fault_counter += 1
                if int(self.fault_counter * rate) != int((self.fault_counter - 1) * rate):
                    return 429 if self.fault_counter % 2 else 503
        return None

    # -- operations -----------------------------------------------------------------

    def steer(self, endpoint_id: str, controls: dict, count: int = 1) -> None:
        """The next `count` jobs on `endpoint_id` take `controls` (outcome, queue, delay, error, output, forget)."""
        with self._lock:
            self.steering.setdefault(endpoint_id, deque()).extend([dict(controls)] * count)

    def upload(self, data: bytes, name: str) -> str:
        """An emulated bucket: the file, served by the emulator at the URL answered."""
        key = f"{uuid.uuid4().hex[:8]}-{name.replace('/', '-')}"
        with self._lock:
            self.files[key] = data
        return f"{self.base_url}/_emulator/files/{key}"

    def fetch(self, url: str) -> bytes:
        """What a worker downloads (runpod-python's `rp_download`, which refuses an error answer):
        the file, from this machine; elsewhere a stand-in (no network here). The real download's
        SSRF guard (rp_ssrf.py) refuses private addresses unless RUNPOD_ALLOW_PRIVATE_DOWNLOAD_URLS is
        set: the emulated workers run as if it were, since everything here is on loopback."""
        if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
            answer = self._session.get(url, timeout=(2, 60))
            answer.raise_for_status()
            data = answer.content
        else:
            data = url.encode()
        with self._lock:
            self.fetched.append((url, len(data)))
        return data

    def _outcome(self, endpoint_id: str, job_id: str, job_input: dict) -> serverless.Outcome:
        spec = self.workers.get(endpoint_id, "custom")
        module, version = parse(spec.split("+")[0])
        bucket = "+bucket" in spec or (module.BUCKET and "+nobucket" not in spec)
        env = WorkerEnv(version=version, upload=self.upload if bucket else None, fetch=self.fetch)
        handler = module.make_handler(env, job_input) if module.NAME == "custom" else module.make_handler(env)
        return serverless.run(handler, {"id": job_id, "input": job_input}, module.AGGREGATE)

    def run(self, endpoint_id: str, job_input: dict, webhook: str | None, sync: bool = False) -> EmulatedJob:
        with self._lock:
            planned = self.steering.get(endpoint_id)
            steered = planned.popleft() if planned else None
        controls = steered or (job_input.get("emulate") if isinstance(job_input.get("emulate"), dict) else {})
        if controls.get("answer_after"):  # this /run call takes that long to answer (a slow or stuck API)
            time.sleep(float(controls["answer_after"]))
        now = time.time()
        queue = float(controls.get("queue", self.queue_time))
        job_id = f"sync-{uuid.uuid4()}" if sync else f"{uuid.uuid4()}-u1"
        result = self._outcome(endpoint_id, job_id, job_input)
        job = EmulatedJob(
            id=job_id,
            endpoint_id=endpoint_id,
            input=job_input,
            webhook=webhook,
            created=now,
            start_at=now + queue,
            finish_at=now + queue + float(controls.get("delay", self.run_time)),
            outcome=controls.get("outcome", result.status),
            forget=bool(controls.get("forget")),
            controls=controls,
            result=result,
            sync=sync,
        )
        with self._lock:
            self.jobs[job.id] = job
            heapq.heappush(self._timers, (job.finish_at, job.id))
            self._wake.notify()
        return job

    def _find(self, endpoint_id: str, job_id: str) -> EmulatedJob | None:
        """The endpoint's job, brought up to now (caller holds the lock)."""
        job = self.jobs.get(job_id)
        if job is None or job.endpoint_id != endpoint_id:
            return None
        self._advance(job, time.time())
        return job

    def get(self, endpoint_id: str, job_id: str) -> EmulatedJob | None:
        with self._lock:
            job = self._find(endpoint_id, job_id)
            if job and job.status in FINAL and (job.forget or time.time() - job.finish_at > min(self.forget_after, job.kept)):
                return None  # RunPod forgets finished jobs
            return job

    def cancel(self, endpoint_id: str, job_id: str) -> EmulatedJob | None:
        with self._lock:
            job = self._find(endpoint_id, job_id)
            if job and job.status not in FINAL:
                job.status, job.outcome, job.finish_at = "CANCELLED", "CANCELLED", time.time()
            return job

    def retry(self, endpoint_id: str, job_id: str) -> EmulatedJob | None:
        with self._lock:
            job = self._find(endpoint_id, job_id)
            if job and job.status in ("FAILED", "TIMED_OUT", "CANCELLED"):
                now = time.time()
                job.status, job.error, job.retries = "IN_QUEUE", None, job.retries + 1
                job.outcome = job.controls.get("retry_outcome", job.result.status if job.result else "COMPLETED")
                job.start_at, job.finish_at = now + self.queue_time, now + self.queue_time + self.run_time
                heapq.heappush(self._timers, (job.finish_at, job.id))
                self._wake.notify()
            return job

    def purge(self, endpoint_id: str) -> int:
        now = time.time()
        with self._lock:
            queued = [
                j for j in self.jobs.values() if j.endpoint_id == endpoint_id and now < j.start_at and j.status == "IN_QUEUE"
            ]
            for job in queued:
                del self.jobs[job.id]
            return len(queued)

    def health(self, endpoint_id: str) -> dict:
        now = time.time()
        counts: Counter = Counter()
        with self._lock:
            for job in self.jobs.values():
                if job.endpoint_id == endpoint_id:
                    self._advance(job, now)
                    counts[job.status] += 1
        return {
            "jobs": {
                "completed": counts["COMPLETED"],
                "failed": counts["FAILED"] + counts["TIMED_OUT"],
                "inProgress": counts["IN_PROGRESS"],
                "inQueue": counts["IN_QUEUE"],
                "retried": 0,
            },
            "workers": {"idle": 1, "running": min(counts["IN_PROGRESS"], 10)},
        }

    def stream_chunks(self, job: EmulatedJob) -> list[dict]:
        """The pieces produced since the last call (RunPod's /stream hands each out once): the
        worker's stream pieces as its run goes on, or a plain handler's output once it is done."""
        with self._lock:
            pieces = list(job.result.pieces) if job.result else []
            if not pieces and job.status == "COMPLETED" and not (job.result and job.result.pieces):
                pieces = [job.output]
            elif job.status in ("IN_QUEUE", "IN_PROGRESS"):
                done = max(0.0, min(1.0, (time.time() - job.start_at) / max(job.finish_at - job.start_at, 1e-6)))
                pieces = pieces[: int(len(pieces) * done)] if job.status == "IN_PROGRESS" else []
            elif job.status != "COMPLETED" and job.status != "FAILED":
                pieces = pieces[: job.streamed]
            new, job.streamed = pieces[job.streamed :], max(job.streamed, len(pieces))
        return [{"output": piece} for piece in new]

    # -- the clock ------------------------------------------------------------------

    def _advance(self, job: EmulatedJob, now: float) -> None:
        """Bring a job's status up to `now` (caller holds the lock)."""
        if job.status in FINAL:
            return
        if now >= job.finish_at:
            job.status = job.outcome
            result = job.result or serverless.Outcome("COMPLETED")
            if job.outcome == "COMPLETED":
                job.output = job.controls["output"] if "output" in job.controls else result.output
            elif job.outcome in ("FAILED", "TIMED_OUT"):
                default = result.error if result.status == "FAILED" else "handler raised: emulated failure"
                job.error = job.controls.get("error", default)
        elif now >= job.start_at:
            job.status = "IN_PROGRESS"

    def _callback_loop(self) -> None:
        while True:
            with self._lock:
                while not self._timers or self._timers[0][0] > time.time():
                    self._wake.wait(timeout=None if not self._timers else max(0.0, self._timers[0][0] - time.time()))
                _, job_id = heapq.heappop(self._timers)
                job = self.jobs.get(job_id)
                if job is None or time.time() < job.finish_at:
                    continue
                self._advance(job, time.time())
                if not job.webhook or job.forget:
                    continue
                webhook, body = job.webhook, job.payload()
            self._senders.submit(self._send, webhook, body)

    def _send(self, url: str, body: dict) -> None:
        # RunPod retries a failed webhook twice, 10 s apart; the emulator waits 1 s.
        for _attempt in range(3):
            try:
                response = self._session.post(url, json=body, timeout=(2, 5))
                if response.status_code < 300:
                    with self._lock:
                        self.callbacks_sent += 1
                    return
            except requests.RequestException:
                pass
            time.sleep(1.0)
        with self._lock:
            self.callbacks_failed += 1
