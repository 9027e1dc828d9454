"""Jobs in Redis: every write the pipeline makes to them, and every read.

Each job is a hash `pr:job:{id}`. Every job not yet final is also in the sorted set
`pr:pending`, scored by when something must next happen to it (submit, poll, resume).
That set is how nothing is lost: a worker that dies holding a job only held a lease
(a score in the future), and when the lease runs out any worker picks the job up again.
State changes are compare-and-set (`transition.lua`), so a callback, a poll and a cancel
racing on one job end it once. The same script appends the change's event to the event
stream (`events.py`), so an event exists exactly when the change happened, and the
courier can never miss one. A new job is stored by `create.lua`, within its key's limits.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import redis

from integration.accounts import ratelimit
from integration.accounts.limits import LimitReached, Limits, month, reservation_keys, reserve
from integration.accounts.ratelimit import RateCount
from integration.errors import not_found
from integration.files.store import DirectoryStore, S3Store
from integration.jobs.deadlines import Deadlines
from integration.jobs.events import EVENT_TYPES, EVENTS, PROGRESS_EVENT, Event
from integration.jobs.fairness import FairQueue
from integration.jobs.log import CHANGED, LOG, LOG_KEPT_AFTER_END, JobLog
from integration.jobs.record import UNFINISHED, Job, JobStatus, compact
from integration.logs import job_ids
from integration.metrics import Metrics
from integration.redis import scripts
from integration.redis.group_commit import GroupCommit
from integration.redis.leases import LeasedSet

log = logging.getLogger(__name__)

JOB = "pr:job:{}"
KEY_JOBS = "pr:jobs:{}"  # per API key, scored by creation time: listing
PENDING = "pr:pending"  # every unfinished job, scored by when it is next due
WAKE = "pr:tracker:wake"  # pushed to when a job becomes due now (a callback arrived)
BY_RUNPOD_ID = "pr:runpod:{}"  # RunPod's job id -> podrelay's, for the direct routes
OVERDUE_AFTER = 30.0  # a job due longer than this counts as backlog (/readyz, /metrics)
LISTED = tuple(name for name in Job.__dataclass_fields__ if name not in ("input", "callback"))  # what GET /v1/jobs reads


@dataclass(frozen=True)
class Transition:
    """The outcome of a compare-and-set: applied or not, and the status before it."""

    applied: bool
    previous: JobStatus | None


def count_pending(pipe: redis.client.Pipeline, now: float) -> None:
    """Queue on `pipe` the counts of unfinished jobs and of those overdue (two answers)."""
    pipe.zcard(PENDING)
    pipe.zcount(PENDING, "-inf", now - OVERDUE_AFTER)


class JobStore:
    """Every read and write of jobs, on one Redis connection."""

    def __init__(
        self,
        conn: redis.Redis,
        result_ttl: int,
        event_data: Callable[[dict], dict] | None = None,
        metrics: Metrics | None = None,
        commits: GroupCommit | None = None,
        files: DirectoryStore | S3Store | None = None,
    ):
        self.conn = conn
        self.files = files  # the blob store a completed job's inline files move to (None: kept inline)
        self.commits = commits  # new jobs' writes, batched with other requests' (the web's hot path)
        self.metrics = metrics
        self.result_ttl = result_ttl
        self.event_data = event_data or (lambda data: data)  # e.g. link large files instead of inlining
        self.log = JobLog(conn, result_ttl)  # status changes and streamed output, in order
        self._transition = scripts.load(conn, __file__, "transition.lua")
        self.pending = LeasedSet(conn, PENDING)
        self.fair = FairQueue(conn)  # queued jobs waiting for their endpoint's /run budget, per key
        self.deadlines = Deadlines(conn)
        self._create = scripts.load(conn, __file__, "create.lua", include=ratelimit.WINDOW_LUA)

    # -- accept ---------------------------------------------------------------------

    def create(self, job: Job, due: float = 0, limits: Limits | None = None, rate: RateCount | None = None) -> None:
        """Store a new job, due at once in the pending set: that entry is its submit order.

        One atomic command (a script): with `rate`, the request counted against its key's
        rate limit (`RateExceeded` past it; `rate.state` set either way); the key's
        concurrency limit and budget checked (`LimitReached` when either would be crossed),
        the cost reserved, the record, the key's index, the pending entry, and a nudge that
        wakes an idle tracker.
        """
        record = compact({name: str(value) for name, value in job.to_redis().items()})
        period, cost = month(job.created), job.cost or 0.0
        in_flight_limit = limits.jobs_in_flight if limits else None
        budget = limits.monthly_budget if limits else None
        keys = [JOB.format(job.id), KEY_JOBS.format(job.key_id), PENDING, WAKE, *reservation_keys(job.key_id)]
        keys.append(ratelimit.window_key(job.key_id))
        args = [job.id, job.created, due, "" if in_flight_limit is None else in_flight_limit, "" if budget is None else budget]
        args += [period, cost, record, *(ratelimit.hit_args(rate.limit) if rate else ("", "", ""))]
        answer = self.commits.call(self._create, keys, args) if self.commits else self._create(keys=keys, args=args)
        if rate:
            rate.state = ratelimit.state(rate.limit, answer[-4:])
            if answer[0] == -3:
                raise ratelimit.RateExceeded(rate.state)
        if answer[0] == -1:
            raise LimitReached.concurrency(in_flight_limit, int(answer[1]))
        if answer[0] == -2:
            raise LimitReached.budget(budget, period, float(answer[1]), float(answer[2]), cost)
        if job.runpod_id:
            self.index_runpod_id(job.id, job.runpod_id)
        if job.deadline:
            self.deadlines.add(job.id, job.deadline)
        if self.metrics is not None:
            self.metrics.inc("podrelay_job_transitions_total", surface=job.surface, status=job.status.value)

    # -- read -----------------------------------------------------------------------

    def owned(self, job_id: str, key_id: str) -> Job:
        """The job of `key_id`, or 404 `not_found` (also for another key's job)."""
        job = self.get(job_id) if len(job_id) <= 64 else None
        if job is None or job.key_id != key_id:
            raise not_found("Job")
        return job

    def shown(self, job: Job) -> dict:
        """The job object as clients see it: stored files as signed download links."""
        return self.event_data(job.to_api())

    def existing(self, job_ids: list[str]) -> set[str]:
        """Which of `job_ids` still have a record (the file sweep's question), in one round trip."""
        pipe = self.conn.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.exists(JOB.format(job_id))
        return {job_id for job_id, found in zip(job_ids, pipe.execute(), strict=True) if found}

    def get(self, job_id: str) -> Job | None:
        """The job, or None (never stored, or expired after RESULT_TTL)."""
        data = self.conn.hgetall(JOB.format(job_id))
        return Job.from_redis(data) if data else None

    def get_many(self, job_ids: list[str], listed: bool = False) -> list[Job | None]:
        """The jobs in one round trip, None where one is gone. `listed`: without the fields a
        listing does not show (the worker's input, which may hold an upload, and RunPod's payload)."""
        pipe = self.conn.pipeline(transaction=False)
        for job_id in job_ids:
            if listed:
                pipe.hmget(JOB.format(job_id), LISTED)
            else:
                pipe.hgetall(JOB.format(job_id))
        found = pipe.execute()
        if listed:
            found = [{n.encode(): v for n, v in zip(LISTED, values, strict=True) if v is not None} for values in found]
        return [Job.from_redis(d) if d else None for d in found]

    def list_for_key(
        self, key_id: str, limit: int, cursor: str | None, status: str | None, surface: str | None
    ) -> tuple[list[Job], str | None]:
        """A page of a key's jobs, newest first; the cursor is the last job's id."""
        index = KEY_JOBS.format(key_id)
        start = 0
        if cursor:
            rank = self.conn.zrevrank(index, cursor)
            if rank is None:
                return [], None
            start = rank + 1
        found: list[Job] = []
        scanned, batch = 0, max(limit * 2, 50)
        while len(found) < limit and scanned < 10_000:
            ids = [i.decode() for i in self.conn.zrevrange(index, start, start + batch - 1)]
            if not ids:
                return found, None
            gone = []
            for job_id, job in zip(ids, self.get_many(ids, listed=True), strict=False):
                start += 1
                if job is None:
                    gone.append(job_id)
                    continue
                if (status and job.status.value != status) or (surface and job.surface != surface):
                    continue
                found.append(job)
                if len(found) == limit:
                    break
            if gone:  # finished jobs whose record expired after RESULT_TTL
                self.conn.zrem(index, *gone)
                start -= len(gone)
            scanned += len(ids)
        more = self.conn.zcard(index) > start
        return found, (found[-1].id if found and more else None)

    # -- transitions ----------------------------------------------------------------

    def transition(self, job: Job, to: JobStatus, allowed: tuple[JobStatus, ...], **fields) -> Transition:
        """Move `job` to `to` with `fields` if it is in `allowed`, with the change's event."""
        if to.final:
            fields.setdefault("finished", time.time())
            fields["callback"] = ""
        event = None
        if to in EVENT_TYPES:
            changed = {k: v for k, v in fields.items() if k in Job.__dataclass_fields__ and k != "callback"}
            after = replace(job, status=to, **changed)
            event = Event.for_job(EVENT_TYPES[to], after, self.event_data(after.to_api()))
        outcome = self._compare_and_set(job.id, to, allowed, event, fields, key_id=job.key_id)
        if outcome.applied:
            detail = f" (RunPod {fields['runpod_id']})" if fields.get("runpod_id") else ""
            log.info("job %s -> %s%s", outcome.previous, to.value, detail, extra=job_ids(job))
        if outcome.applied and self.metrics is not None:
            self.metrics.inc("podrelay_job_transitions_total", surface=job.surface, status=to.value)
            if to.final:
                self.metrics.observe("podrelay_job_duration_seconds", fields["finished"] - job.created, surface=job.surface)
        return outcome

    def progressed(self, job: Job, progress) -> bool:
        """A running job's new progress report (what its worker sent with `progress_update`): kept
        on the job, added to its log (SSE, WebSocket) and sent as a `job.progress` event."""
        data = {"id": job.id, "object": "job", "status": JobStatus.RUNNING.value, "surface": job.surface,
                "model": job.model, "progress": progress}  # fmt: skip
        event = Event.for_job(PROGRESS_EVENT, job, data)
        if not self._compare_and_set(job.id, None, UNFINISHED, event, {"progress": progress}).applied:
            return False
        self.log.append_progress(job.id, progress)
        return True

    def update(self, job_id: str, only_if: tuple[JobStatus, ...] = UNFINISHED, **fields) -> Transition:
        """Write fields without changing the status, if the job is in `only_if` (unfinished)."""
        return self._compare_and_set(job_id, None, only_if, None, fields)

    def _compare_and_set(
        self, job_id: str, to: JobStatus | None, allowed, event: Event | None, fields: dict, key_id: str = ""
    ) -> Transition:
        final = to is not None and to.final
        args: list = [
            to.value if to else "",
            ",".join(s.value for s in allowed),
            self.result_ttl if final else 0,
            "1" if final else "0",
        ]
        args.append(json.dumps([x for pair in event.to_fields().items() for x in pair], separators=(",", ":")) if event else "")
        args += [min(self.result_ttl, LOG_KEPT_AFTER_END) if final else self.result_ttl, month()]
        for name, value in fields.items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value, separators=(",", ":"))
            args += [name, "" if value is None else value]
        keys = [JOB.format(job_id), PENDING, EVENTS, CHANGED.format(job_id), LOG.format(job_id)]
        keys += reservation_keys(key_id)
        applied, previous = self._transition(keys=keys, args=args)
        return Transition(applied == 1, JobStatus(previous.decode()) if previous else None)

    def wait_for_due(self, timeout: float) -> None:
        """Block up to `timeout` seconds, or until a job becomes due now (an idle tracker's sleep)."""
        self.conn.blpop([WAKE], timeout=timeout)

    def set_runpod_id(self, job_id: str, runpod_id: str) -> None:
        """Record the RunPod id even on a job that is already final."""
        self.conn.hset(JOB.format(job_id), "runpod_id", runpod_id)
        self.index_runpod_id(job_id, runpod_id)

    def index_runpod_id(self, job_id: str, runpod_id: str) -> None:
        """Let `by_runpod_id` find the job by RunPod's id (kept as long as results are)."""
        self.conn.set(BY_RUNPOD_ID.format(runpod_id), job_id, ex=self.result_ttl)

    def by_runpod_id(self, runpod_id: str) -> Job | None:
        """The job RunPod knows as `runpod_id`, or None."""
        job_id = self.conn.get(BY_RUNPOD_ID.format(runpod_id)) if len(runpod_id) <= 128 else None
        return self.get(job_id.decode()) if job_id else None

    def reopen(self, job: Job, runpod_status: str) -> None:
        """A final job that RunPod runs again (its /retry): unfinished and tracked once more."""
        pipe = self.conn.pipeline()
        pipe.hset(
            JOB.format(job.id),
            mapping={
                "status": JobStatus.SUBMITTED.value,
                "runpod_status": runpod_status,
                "finished": "",
                "error": "",
                "result": "",
            },
        )
        pipe.persist(JOB.format(job.id))
        pipe.zadd(PENDING, {job.id: time.time()})
        reserve(pipe, job.key_id, job.id, job.cost or 0.0)  # it runs, and costs, again
        pipe.execute()

    def set_runpod_status(self, job_id: str, runpod_status: str) -> None:
        """Record RunPod's status even on a job that is already final (a cancel confirmed)."""
        self.conn.hset(JOB.format(job_id), "runpod_status", runpod_status)

    def relay_stream(self, job_id: str) -> None:
        """Have the tracker read a direct job's RunPod stream into its log from now on (due now)."""
        pipe = self.conn.pipeline(transaction=False)
        pipe.hset(JOB.format(job_id), "relay_stream", "1")
        pipe.zadd(PENDING, {job_id: 0}, xx=True)
        pipe.lpush(WAKE, job_id)
        pipe.ltrim(WAKE, 0, 0)
        pipe.execute()

    def record_callback(self, job_id: str, payload: dict) -> bool:
        """Keep a provider callback on the job and make the job due now; False if final."""
        if not self.update(job_id, callback=payload).applied:
            return False
        pipe = self.conn.pipeline(transaction=False)
        pipe.zadd(PENDING, {job_id: 0}, xx=True)
        pipe.lpush(WAKE, job_id)
        pipe.ltrim(WAKE, 0, 0)
        pipe.execute()
        return True
