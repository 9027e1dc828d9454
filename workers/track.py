"""The tracker: one loop per worker process that drives every unfinished job forward.

It leases due jobs from the pending set in batches and, per job, submits it to RunPod
(queued jobs), applies a provider callback that arrived, or polls RunPod's `/status`;
the HTTP calls run concurrently on one session. No thread waits on one job, so a process
carries thousands in flight. `/run` and `/status` calls are counted per endpoint in
Redis against budgets (a tenth of the 10-second budget per second) shared by all worker processes, so podrelay stays
under RunPod's limits (1,000 `/run` and 2,000 `/status` per 10 s per endpoint).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis

from integration.files import results
from integration.files.store import FileMissing
from integration.jobs.outcomes import apply_status, expire, result_of
from integration.jobs.record import Job, JobStatus
from integration.readiness import HEARTBEAT_EVERY, beat, worker_name
from integration.redis.connection import redis_problem
from integration.resources import Resources
from integration.runpod.client import RunPodNotFound, RunPodUnavailable
from integration.surfaces.outputs import OutputError
from workers.schedule import STREAM_INTERVAL, next_poll_delay, retry_delay
from workers.submit import submit

log = logging.getLogger(__name__)

BATCH = 500  # jobs leased per round


class Tracker:
    """Leases due jobs and moves each one step: submit again, apply a callback, or poll."""

    def __init__(self, resources: Resources, stop: threading.Event | None = None):
        self.res = resources
        self.settings = resources.settings
        self.stop = stop or threading.Event()
        # No retries: a failed poll or submit is rescheduled, never slept on.
        self.runpod = resources.runpod_client(retries=0, pool_size=self.settings.tracker_concurrency)
        self.budgets = resources.runpod_budgets
        self.pool = ThreadPoolExecutor(self.settings.tracker_concurrency, thread_name_prefix="poll")

    def run(self) -> None:
        """Loop until stopped; errors are logged and the loop goes on (jobs stay leased)."""
        name, last_beat = worker_name(), 0.0
        while not self.stop.is_set():
            try:
                if time.time() - last_beat > HEARTBEAT_EVERY:
                    beat(self.res.redis, name)
                    last_beat = time.time()
                if self.tick() == 0:
                    self._idle()
            except redis.exceptions.ConnectionError as error:  # Redis away, or at its limit: one line, not a traceback
                log.error("tracker round failed: %s; retrying", redis_problem(error) or error)
                self.stop.wait(1.0)
            except Exception:
                log.exception("tracker round failed; retrying")
                self.stop.wait(1.0)
        self.pool.shutdown(wait=True)

    def _idle(self) -> None:
        due = self.res.jobs.pending.next_due()
        timeout = 1.0 if due is None else min(1.0, max(0.01, due - time.time()))
        self.res.jobs.wait_for_due(timeout)

    def tick(self) -> int:
        """One round: lease due jobs and move each; returns how many were leased."""
        now = time.time()
        ids = self.res.jobs.pending.claim_due(now, BATCH, self.settings.lease_seconds)
        if not ids:
            return 0
        to_submit: list[Job] = []
        to_poll: list[Job] = []
        to_apply: list[Job] = []  # a callback came: applied beside the calls (its files may go to the store)
        for job_id, job in zip(ids, self.res.jobs.get_many(ids), strict=True):
            if job is None or job.status.final:
                self.res.jobs.pending.remove(job_id)
            elif job.callback:
                to_apply.append(job)
            elif job.direct and not job.runpod_id:
                self._unrecorded(job)
            elif job.status == JobStatus.QUEUED or not job.runpod_id:
                to_submit.append(job)
            else:
                to_poll.append(job)
        work = [(self._apply_callback, job) for job in to_apply]
        work += [(self._submit, job) for job in self._within_budget("run", to_submit, now)]
        for job in self._within_budget("status", to_poll, now):
            work.append((self._stream if job.streaming else self._poll, job))
        list(self.pool.map(lambda step: step[0](step[1]), work))
        return len(ids)

    def _unrecorded(self, job: Job) -> None:
        """A direct job is submitted by the web process that stored it; one whose submission was
        never recorded (that process died during RunPod's call) cannot be told apart from one
        RunPod never got, so it fails rather than risk a second GPU job."""
        message = "The web process stopped before RunPod's answer to /run was recorded; the job may or may not have run"
        self.res.jobs.transition(job, JobStatus.FAILED, (JobStatus.QUEUED,), error={"code": "provider_error", "message": message})

    def _apply_callback(self, job: Job) -> None:
        """The callback kept on the job (its body read back from the store if it was parked there)."""
        try:
            payload = results.unparked(self.res.files, job.callback)
        except FileMissing:  # its body is gone (a store wiped): RunPod still has the result for 30 minutes
            log.warning("job %s: its callback's body is missing from the store; polling instead", job.id)
            self.res.jobs.update(job.id, callback="")
            self.res.jobs.pending.schedule(job.id, time.time())
            return
        self._apply(job, payload)
        if "parked" in job.callback:
            self.res.files.delete(job.callback["parked"])

    def _apply(self, job: Job, payload: dict, **fields) -> None:
        if job.streaming and payload.get("status") == "COMPLETED":
            self._complete_log(job, payload)
        if not apply_status(self.res.jobs, job, payload, **fields):
            age = time.time() - (job.submitted or job.created)
            self.res.jobs.pending.schedule(job.id, time.time() + next_poll_delay(self.settings, age))

    def _within_budget(self, operation: str, jobs: list[Job], now: float) -> list[Job]:
        by_endpoint: dict[str, list[Job]] = {}
        for job in jobs:
            by_endpoint.setdefault(job.endpoint_id, []).append(job)
        allowed: list[Job] = []
        deferred: dict[str, float] = {}
        for endpoint_id, group in by_endpoint.items():
            budget = self.budgets[operation]
            granted = budget.take(endpoint_id, len(group), now)
            allowed += group[:granted]
            # Spread the rest over the seconds their budget allows, from the next one on.
            for n, job in enumerate(group[granted:]):
                deferred[job.id] = int(now) + 1 + n // budget.per_second + random.uniform(0, 1)
        if deferred:
            log.info("%s budget spent; %d jobs wait for the next window", operation, len(deferred))
            self.res.jobs.pending.schedule_many(deferred)
        return allowed

    def _poll(self, job: Job) -> None:
        try:
            payload = self.runpod.status(job.endpoint_id, job.runpod_id)
        except RunPodNotFound:
            expire(self.res.jobs, job)
        except RunPodUnavailable as error:
            self.res.jobs.pending.schedule(job.id, time.time() + retry_delay(self.settings, job.polls + 1, error.retry_after))
        except Exception as error:  # auth or request errors: an operator must act; keep the job
            log.error("job %s: status check failed: %s", job.id, error)
            self.res.jobs.pending.schedule(job.id, time.time() + 60)
        else:
            self._apply(job, payload, polls=job.polls + 1)

    def _stream(self, job: Job) -> None:
        """A streaming chat job: take the pieces produced since the last look, keep them."""
        try:
            payload = self.runpod.stream(job.endpoint_id, job.runpod_id)
        except RunPodNotFound:
            expire(self.res.jobs, job)
            return
        except Exception as error:
            log.warning("job %s: stream read failed: %s", job.id, error)
            self.res.jobs.pending.schedule(job.id, time.time() + 1.0)
            return
        pieces = [item.get("output") for item in payload.get("stream") or [] if isinstance(item, dict)]
        if job.direct:
            self.res.jobs.log.append_pieces(job.id, pieces)
        elif pieces:
            self.res.jobs.log.add_pieces(job.id, pieces)
        if payload.get("status") in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
            self._poll(job)  # the final status carries the whole output
        else:
            apply_status(self.res.jobs, job, {"status": payload.get("status")}, polls=job.polls + 1)
            self.res.jobs.pending.schedule(job.id, time.time() + STREAM_INTERVAL)

    def _complete_log(self, job: Job, payload: dict) -> None:
        """Before a streaming job ends, add what its log lacks of the final output (the end can
        arrive by callback before the last /stream read), so every reader gets it whole."""
        output = payload.get("output")
        log = self.res.jobs.log
        if job.direct:  # the aggregate output is the list of every piece
            if isinstance(output, list):
                log.append_pieces(job.id, output[len(log.pieces(job.id)) :])
            return
        if isinstance(output, list):  # every piece, as the worker streamed them
            log.finish_pieces(job.id, output)
        try:
            final = result_of(job, output)
        except OutputError:
            return
        text = final["choices"][0]["message"]["content"] or ""
        streamed = log.streamed_text(job.id)
        if text.startswith(streamed) and len(text) > len(streamed):
            _, read = log.stream_state(job.id)
            log.append_chunks(job.id, [{"choices": [{"index": 0, "delta": {"content": text[len(streamed) :]}}]}], "", read)

    def _submit(self, job: Job) -> None:
        try:
            submit(self.res, self.runpod, job)
        except Exception:  # e.g. Redis blinked: the lease lapses and the job is retried
            log.exception("job %s: submit step failed", job.id)
