"""The tracker: one loop per worker process that drives every unfinished job forward.

It leases due jobs from the pending set in batches and, per job, applies a provider
callback that arrived, polls RunPod's `/status` (concurrently, on one session), or
re-enqueues a submission that stalled (its worker was killed). No thread waits on one
job, so a process carries thousands in flight. `/status` calls are counted per endpoint
in Redis against a budget per 10 seconds, shared by all worker processes, so polling
stays under RunPod's limit (2,000 per 10 s per endpoint) whatever the load.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from integration.jobs import PENDING, WAKE, Job, JobStatus
from integration.outcomes import apply_status, expire
from integration.resources import Resources
from integration.runpod import RunPodClient, RunPodNotFound, RunPodUnavailable
from integration.tasks import QUEUE_KEY, SUBMIT_LOCK, enqueue_submit, submit_task_id
from workers.schedule import next_poll_delay, retry_delay

log = logging.getLogger(__name__)

BATCH = 500  # jobs leased per round
LEASE = 60.0  # seconds a leased job stays with this process before others may take it
_BUDGET = "pr:budget:status:{}:{}"


class StatusBudget:
    """Counts `/status` calls per endpoint per 10-second window, across processes."""

    def __init__(self, conn, per_window: int):
        self.conn = conn
        self.per_window = per_window

    def take(self, endpoint_id: str, wanted: int, now: float) -> int:
        """How many of `wanted` calls may go now (the rest wait for the next window)."""
        key = _BUDGET.format(endpoint_id, int(now // 10))
        pipe = self.conn.pipeline(transaction=False)
        pipe.incrby(key, wanted)
        pipe.expire(key, 30)
        used = pipe.execute()[0]
        granted = max(0, min(wanted, self.per_window - (used - wanted)))
        if granted < wanted:
            self.conn.decrby(key, wanted - granted)
        return granted


class Tracker:
    """Leases due jobs and moves each one step: submit again, apply a callback, or poll."""

    def __init__(self, resources: Resources, stop: threading.Event | None = None):
        self.res = resources
        self.settings = resources.settings
        self.stop = stop or threading.Event()
        self.runpod = RunPodClient(
            self.settings.runpod_api_key,
            self.settings.runpod_api_base,
            timeout=self.settings.runpod_timeout,
            retries=0,  # a failed poll is rescheduled, never slept on
            pool_size=self.settings.tracker_concurrency,
        )
        self.budget = StatusBudget(resources.redis, self.settings.status_budget_per_10s)
        self.pool = ThreadPoolExecutor(self.settings.tracker_concurrency, thread_name_prefix="poll")

    def run(self) -> None:
        """Loop until stopped; errors are logged and the loop goes on (jobs stay leased)."""
        while not self.stop.is_set():
            try:
                if self.tick() == 0:
                    self._idle()
            except Exception:
                log.exception("tracker round failed; retrying")
                self.stop.wait(1.0)
        self.pool.shutdown(wait=True)

    def _idle(self) -> None:
        due = self.res.jobs.next_due()
        timeout = 1.0 if due is None else min(1.0, max(0.01, due - time.time()))
        self.res.redis.blpop([WAKE], timeout=timeout)

    def tick(self) -> int:
        """One round: lease due jobs and move each; returns how many were leased."""
        now = time.time()
        ids = self.res.jobs.claim_due(now, BATCH, LEASE)
        if not ids:
            return 0
        to_poll: list[Job] = []
        to_resubmit: list[Job] = []
        for job_id, job in zip(ids, self.res.jobs.get_many(ids), strict=False):
            if job is None or job.status.final:
                self.res.redis.zrem(PENDING, job_id)
            elif job.callback:
                self._apply(job, job.callback)
            elif job.status == JobStatus.QUEUED or not job.runpod_id:
                to_resubmit.append(job)
            else:
                to_poll.append(job)
        if to_resubmit:
            self._resubmit(to_resubmit, now)
        if to_poll:
            list(self.pool.map(self._poll, self._within_budget(to_poll, now)))
        return len(ids)

    def _apply(self, job: Job, payload: dict, **fields) -> None:
        if not apply_status(self.res.jobs, job, payload, **fields):
            age = time.time() - (job.submitted or job.created)
            self.res.jobs.schedule(job.id, time.time() + next_poll_delay(self.settings, age))

    def _within_budget(self, jobs: list[Job], now: float) -> list[Job]:
        by_endpoint: dict[str, list[Job]] = {}
        for job in jobs:
            by_endpoint.setdefault(job.endpoint_id, []).append(job)
        allowed: list[Job] = []
        deferred: dict[str, float] = {}
        next_window = (int(now // 10) + 1) * 10
        for endpoint_id, group in by_endpoint.items():
            granted = self.budget.take(endpoint_id, len(group), now)
            allowed += group[:granted]
            for job in group[granted:]:
                deferred[job.id] = next_window + random.uniform(0, 9)
        if deferred:
            log.info("status budget spent; %d polls wait for the next window", len(deferred))
            self.res.jobs.schedule_many(deferred)
        return allowed

    def _poll(self, job: Job) -> None:
        try:
            payload = self.runpod.status(job.endpoint_id, job.runpod_id)
        except RunPodNotFound:
            expire(self.res.jobs, job)
        except RunPodUnavailable as error:
            self.res.jobs.schedule(job.id, time.time() + retry_delay(job.polls + 1, error.retry_after))
        except Exception as error:  # auth or request errors: an operator must act; keep the job
            log.error("job %s: status check failed: %s", job.id, error)
            self.res.jobs.schedule(job.id, time.time() + 60)
        else:
            self._apply(job, payload, polls=job.polls + 1)

    def _resubmit(self, jobs: list[Job], now: float) -> None:
        """Enqueue the submit task again for queued jobs whose task is gone or died.

        A live submission holds the submit lock. A task RQ calls 'queued' must also be
        in the queue's list: a worker killed mid-dequeue can leave it nowhere. A task
        'started' without the lock died with its worker (or is a moment from taking the
        lock, and then a duplicate is harmless: it finds the job submitted).
        """
        pipe = self.res.redis.pipeline(transaction=False)
        queue_key = QUEUE_KEY.format(self.res.queue.name)
        for job in jobs:
            pipe.hget(f"rq:job:{submit_task_id(job.id)}", "status")
            pipe.exists(SUBMIT_LOCK.format(job.id))
            pipe.lpos(queue_key, submit_task_id(job.id))
        answers = pipe.execute()
        for job, status, locked, position in zip(jobs, answers[::3], answers[1::3], answers[2::3], strict=True):
            waiting = status in (b"queued", b"scheduled", b"deferred") and position is not None
            if not locked and not waiting:
                log.info("job %s: submission stalled; enqueueing it again", job.id)
                enqueue_submit(self.res.queue, job.id)
            self.res.jobs.schedule(job.id, now + self.settings.submit_stall_after)
