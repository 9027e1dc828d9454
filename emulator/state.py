"""The emulated RunPod Serverless endpoints: jobs, their timing, outputs and callbacks.

Jobs move IN_QUEUE -> IN_PROGRESS -> COMPLETED (or FAILED, TIMED_OUT, CANCELLED) on a
clock, as RunPod's do. A job's input may carry `emulate: {outcome, queue, delay,
error, output, forget}` to steer it; otherwise the output is made from the input in the
shape of the stock worker for it (worker-vllm, an image worker, faster-whisper,
infinity-embedding). Finished jobs with a `webhook` are POSTed to it, as RunPod does.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import logging
import struct
import threading
import time
import uuid
import zlib
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

log = logging.getLogger(__name__)

FINAL = {"COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED"}


def tiny_png(seed: str, size: int = 8) -> bytes:
    """A real, valid PNG of one colour derived from `seed`."""
    r, g, b = hashlib.sha256(seed.encode()).digest()[:3]
    rows = b"".join(b"\x00" + bytes([r, g, b]) * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def tiny_wav(seed: str, samples: int = 800) -> bytes:
    """A real, valid WAV file: a short tone whose pitch comes from `seed`."""
    step = 1 + hashlib.sha256(seed.encode()).digest()[0] % 16
    data = bytes((128 + (i * step) % 64) for i in range(samples))
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1, 8000, 8000, 1, 8, b"data", len(data)
    )
    return header + data


def tiny_mp4(seed: str) -> bytes:
    """The first box of an MP4 file and some bytes: enough to be recognised as video/mp4."""
    return struct.pack(">I4s4sI", 24, b"ftyp", b"isom", 512) + b"isomiso2" + hashlib.sha256(seed.encode()).digest()


def make_output(job_input: dict):
    """An output in the shape the stock worker for this kind of input gives."""
    if "messages" in job_input:
        last = next((m.get("content") for m in reversed(job_input["messages"]) if m.get("role") == "user"), "")
        text = f"Echo: {last if isinstance(last, str) else 'content parts'}"
        return [
            {"choices": [{"tokens": [text]}], "usage": {"input": len(str(job_input["messages"])) // 4, "output": len(text) // 4}}
        ]
    if "text" in job_input:  # text to speech
        return {"audio": base64.b64encode(tiny_wav(job_input["text"])).decode(), "format": "wav"}
    if "num_frames" in job_input:  # video, from text, an image or audio
        return {"video": base64.b64encode(tiny_mp4(str(job_input))).decode()}
    if "duration" in job_input and "prompt" in job_input:  # music
        return {"audio": base64.b64encode(tiny_wav(job_input["prompt"])).decode(), "format": "wav"}
    if "image" in job_input:  # edit, upscale, background removal
        image = "data:image/png;base64," + base64.b64encode(tiny_png(str(job_input))).decode()
        return {"images": [image] * int(job_input.get("num_images", 1))}
    if "audio" in job_input or "audio_base64" in job_input:
        source = job_input.get("audio") or f"{len(base64.b64decode(job_input['audio_base64']))} uploaded bytes"
        text = f"Transcript of {source}"
        segments = [{"id": 0, "seek": 0, "start": 0.0, "end": 2.5, "text": " " + text}]
        return {
            "segments": segments,
            "detected_language": job_input.get("language", "en"),
            "transcription": text,
            "device": "cuda",
        }
    if "prompt" in job_input:
        image = "data:image/png;base64," + base64.b64encode(tiny_png(job_input["prompt"])).decode()
        return {"images": [image] * int(job_input.get("num_images", 1))}
    if "input" in job_input:
        texts = job_input["input"] if isinstance(job_input["input"], list) else [job_input["input"]]
        data = []
        for index, text in enumerate(texts):
            digest = hashlib.sha256(str(text).encode()).digest()
            data.append({"object": "embedding", "index": index, "embedding": [round(b / 255 - 0.5, 4) for b in digest[:8]]})
        tokens = sum(len(str(t).split()) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": job_input.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    return {"echo": job_input}


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
        return body


class Emulator:
    """RunPod's endpoints in memory, on a clock; thread-safe."""

    def __init__(self, api_key: str | None = None, queue_time: float = 0.05, run_time: float = 0.2, forget_after: float = 1800):
        self.api_key = api_key
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

    def run(self, endpoint_id: str, job_input: dict, webhook: str | None) -> EmulatedJob:
        controls = job_input.get("emulate") if isinstance(job_input.get("emulate"), dict) else {}
        now = time.time()
        queue = float(controls.get("queue", self.queue_time))
        job = EmulatedJob(
            id=f"{uuid.uuid4()}-u1",
            endpoint_id=endpoint_id,
            input=job_input,
            webhook=webhook,
            created=now,
            start_at=now + queue,
            finish_at=now + queue + float(controls.get("delay", self.run_time)),
            outcome=controls.get("outcome", "COMPLETED"),
            forget=bool(controls.get("forget")),
            controls=controls,
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
            if job and job.status in FINAL and (job.forget or time.time() - job.finish_at > self.forget_after):
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
                job.outcome = job.controls.get("retry_outcome", "COMPLETED")
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
        """The output produced since the last call, in pieces (RunPod's /stream hands each out once)."""
        with self._lock:
            if "messages" not in job.input:
                pieces = [job.output] if job.status == "COMPLETED" else []
            else:
                output = job.output if isinstance(job.output, list) else make_output(job.input)
                words = "".join(output[0]["choices"][0]["tokens"]).split(" ")
                pieces = [{"choices": [{"tokens": [w if i == 0 else " " + w]}]} for i, w in enumerate(words)]
                if job.status in ("IN_QUEUE", "IN_PROGRESS"):
                    done = max(0.0, min(1.0, (time.time() - job.start_at) / max(job.finish_at - job.start_at, 1e-6)))
                    pieces = pieces[: int(len(pieces) * done)] if job.status == "IN_PROGRESS" else []
                elif job.status != "COMPLETED":
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
            if job.outcome == "COMPLETED":
                job.output = job.controls["output"] if "output" in job.controls else make_output(job.input)
            elif job.outcome in ("FAILED", "TIMED_OUT"):
                job.error = job.controls.get("error", "handler raised: emulated failure")
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
