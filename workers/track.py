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

from integration.accounts.keys import stored_limits
from integration.accounts.limits import Limits
from integration.files import results
from integration.files.store import FileMissing
from integration.jobs import deadlines, fairness
from integration.jobs.events import PROGRESS_EVENT
from integration.jobs.outcomes import apply_status, expire, result_of
from integration.jobs.record import UNFINISHED, Job, JobStatus
from integration.jobs.tasks import enqueue_cancel
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
        # Calls in flight: each runs on its own, so a slow one delays only its job; the loop
        # goes on leasing and submitting while there is room in the pool.
        self._in_flight = 0
        self._lock = threading.Lock()
        self._freed = threading.Event()
        self._weights: dict[str, tuple[float, float]] = {}  # key id -> (its share weight, until when known)
        self._fair_waiting = False  # the last round saw jobs waiting for an endpoint's budget

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
        if self._fair_waiting:  # jobs waited for budget at the last round: it renews each second
            timeout = min(timeout, max(0.01, 1.0 - time.time() % 1.0))
        if self._room() < self.settings.tracker_concurrency:
            # Calls in flight schedule their jobs' next steps when they end (a first poll 0.5 s on):
            # look again when one ends, or soon, rather than sleep on Redis past what they scheduled.
            self._freed.wait(min(timeout, 0.2))
            self._freed.clear()
            return
        self.res.jobs.wait_for_due(timeout)

    def _room(self) -> int:
        with self._lock:
            return self.settings.tracker_concurrency - self._in_flight

    def _start(self, step, job: Job) -> None:
        """Run one job's step in the pool, without waiting for it."""
        with self._lock:
            self._in_flight += 1

        def done(_future) -> None:
            with self._lock:
                self._in_flight -= 1
            self._freed.set()

        self.pool.submit(step, job).add_done_callback(done)

    def tick(self) -> int:
        """One round: end jobs past their deadline, lease due jobs, queue the ones to submit for
        their endpoint's budget (fairly across keys), and start each step that has room in the
        pool: submissions first, up to half of it; returns how many things it did."""
        now = time.time()
        self._end_overdue(now)
        ids = self.res.jobs.pending.claim_due(now, BATCH, self.settings.lease_seconds)
        to_queue: list[Job] = []
        to_poll: list[Job] = []
        steps: list = []
        for job_id, job in zip(ids, self.res.jobs.get_many(ids) if ids else [], strict=True):
            if job is None or job.status.final:
                self.res.jobs.pending.remove(job_id)
            elif job.callback:
                steps.append((self._apply_callback, job))  # its files may go to the store: beside the calls
            elif job.direct and not job.runpod_id:
                self._unrecorded(job)
            elif job.status == JobStatus.QUEUED or not job.runpod_id:
                to_queue.append(job)
            else:
                to_poll.append(job)
        self._queue_fairly(to_queue, now)
        for job in self._within_budget("status", to_poll, now):
            steps.append((self._stream if job.streaming else self._poll, job))
        room = self._room()
        submits = self._fair_turns(max(room // 2, room - len(steps)), now)
        fits = max(0, room - len(submits))
        work, later = [(self._submit, job) for job in submits] + steps[:fits], steps[fits:]
        if later:  # no room for them now: due again in a moment (their lease would hold them a minute)
            self.res.jobs.pending.schedule_many({job.id: now + 0.1 for _, job in later})
        for step, job in work:
            self._start(step, job)
        return 0 if later else len(work) + len(to_queue)  # 0: the loop waits for room

    def _weight(self, key_id: str, now: float) -> float:
        known = self._weights.get(key_id)
        if known is None or known[1] < now:
            stored = Limits.resolve(stored_limits(self.res.redis, key_id), self.settings).share_weight
            known = self._weights[key_id] = (stored or 1.0, now + 5.0)
        return known[0]

    def _queue_fairly(self, jobs: list[Job], now: float) -> None:
        """Queued jobs join their key's queue on their endpoint (fairness.py); in the pending set
        they are due again only as a safety net, should the queue's tracker die holding them."""
        by_endpoint: dict[str, list] = {}
        for job in jobs:
            place = fairness.score(job.priority, job.created)
            by_endpoint.setdefault(job.endpoint_id, []).append((job.key_id, self._weight(job.key_id, now), job.id, place))
        for endpoint_id, waiting in by_endpoint.items():
            self.res.jobs.fair.push(endpoint_id, waiting)
        self.res.jobs.pending.schedule_many({job.id: now + fairness.WAIT_SAFETY for job in jobs})

    def _fair_turns(self, room: int, now: float) -> list[Job]:
        """The queued jobs to submit now: each endpoint's /run budget for this second, shared
        across the keys waiting on it by weight, up to `room` calls in all."""
        chosen: list[str] = []
        budget = self.budgets["run"]
        endpoints = self.res.jobs.fair.endpoints()
        self._fair_waiting = bool(endpoints)
        for endpoint_id in endpoints:
            if room - len(chosen) <= 0:
                break
            allowed = self.res.circuits.allowed(endpoint_id, now)  # None: closed; 0: open, its jobs wait; 1: a probe
            if allowed == 0:
                continue
            granted = budget.take(endpoint_id, room - len(chosen) if allowed is None else 1, now)
            taken = self.res.jobs.fair.pop(endpoint_id, granted)
            budget.give_back(endpoint_id, granted - len(taken), now)
            chosen += taken
        if not chosen:
            return []
        self.res.jobs.pending.schedule_many({job_id: now + self.settings.lease_seconds for job_id in chosen})
        return [job for job in self.res.jobs.get_many(chosen) if job is not None]

    def _end_overdue(self, now: float) -> None:
        """Jobs past their deadline end `cancelled` (`deadline_exceeded`), at RunPod too once submitted."""
        overdue = self.res.jobs.deadlines.due(now)
        for job in filter(None, self.res.jobs.get_many(overdue) if overdue else []):
            outcome = self.res.jobs.transition(job, JobStatus.CANCELLED, UNFINISHED, error=deadlines.ERROR)
            if outcome.applied and outcome.previous != JobStatus.QUEUED:
                enqueue_cancel(self.res.queue, job.id)
        self.res.jobs.deadlines.done(overdue)

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
            reported = job.progress is not None or (payload.get("status") == "IN_PROGRESS" and payload.get("output") is not None)
            reporting = reported or job.asked_for(PROGRESS_EVENT)
            self.res.jobs.pending.schedule(job.id, time.time() + next_poll_delay(self.settings, age, reporting))

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
