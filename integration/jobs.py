"""Jobs in Redis: the record, its states, and every write the pipeline makes to them.

Each job is a hash `pr:job:{id}`. Every job not yet final is also in the sorted set
`pr:pending`, scored by when something must next happen to it (submit, poll, resume).
That set is how nothing is lost: a worker that dies holding a job only held a lease
(a score in the future), and when the lease runs out any worker picks the job up again.
State changes are compare-and-set (a Lua script), so a callback, a poll and a cancel
racing on one job end it once. The same script appends the change's event (job.started,
job.completed, ...) to the stream `pr:events`, so an event exists exactly when the
change happened, and the webhook dispatcher can never miss one.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

import redis

from integration.group_commit import GroupCommit
from integration.leases import LeasedSet
from integration.logs import job_ids
from integration.metrics import Metrics
from integration.quotas import IN_FLIGHT, USAGE, LimitReached, Limits, month

log = logging.getLogger(__name__)

JOB = "pr:job:{}"
KEY_JOBS = "pr:jobs:{}"  # per API key, scored by creation time: listing
PENDING = "pr:pending"  # every unfinished job, scored by when it is next due
WAKE = "pr:tracker:wake"  # pushed to when a job becomes due now (a callback arrived)
EVENTS = "pr:events"  # stream of job events, read by the webhook dispatcher
CHANGED = "pr:changed:{}"  # pub/sub channel per job: a message on every status change
LOG = "pr:log:{}"  # per job: its status changes and output pieces, in order (SSE, WebSocket)
BY_RUNPOD_ID = "pr:runpod:{}"  # RunPod's job id -> podrelay's, for the direct routes


class JobStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT}
EVENT_TYPES = {
    JobStatus.RUNNING: "job.started",
    JobStatus.COMPLETED: "job.completed",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
    JobStatus.TIMED_OUT: "job.timed_out",
}
UNFINISHED = (JobStatus.QUEUED, JobStatus.SUBMITTED, JobStatus.RUNNING)

_JSON_FIELDS = ("input", "result", "error", "policy", "callback")


@dataclass(frozen=True)
class Job:
    """A job as stored: the request's routing, its RunPod side, and its outcome."""

    id: str
    key_id: str
    surface: str
    model: str
    endpoint_id: str
    status: JobStatus
    created: float
    input: dict = field(default_factory=dict)
    runpod_id: str | None = None
    runpod_status: str | None = None
    submitted: float | None = None
    started: float | None = None
    finished: float | None = None
    result: dict | None = None
    error: dict | None = None
    webhook_url: str | None = None
    policy: dict | None = None
    callback: dict | None = None
    cost: float | None = None
    submit_attempts: int = 0
    polls: int = 0
    request_id: str | None = None

    @property
    def streaming(self) -> bool:
        """A chat job whose output is relayed piece by piece (RunPod's /stream)."""
        return self.surface == "chat" and bool(self.input.get("stream"))

    def to_redis(self) -> dict:
        """The hash fields: JSON for structures, nothing for None."""
        out = {}
        for name, value in self.__dict__.items():
            if value is None:
                continue
            if name in _JSON_FIELDS:
                out[name] = json.dumps(value, separators=(",", ":"))
            elif isinstance(value, JobStatus):
                out[name] = value.value
            else:
                out[name] = value
        return out

    @classmethod
    def from_redis(cls, data: dict[bytes, bytes]) -> Job:
        values = {k.decode(): v.decode() for k, v in data.items()}
        kwargs: dict = {}
        for name in cls.__dataclass_fields__:
            raw = values.get(name)
            if raw is None or raw == "":
                continue
            if name in _JSON_FIELDS:
                kwargs[name] = json.loads(raw)
            elif name in ("created", "submitted", "started", "finished", "cost"):
                kwargs[name] = float(raw)
            elif name in ("submit_attempts", "polls"):
                kwargs[name] = int(raw)
            elif name == "status":
                kwargs[name] = JobStatus(raw)
            else:
                kwargs[name] = raw
        return cls(**kwargs)

    def to_api(self) -> dict:
        """The job object of `GET /v1/jobs/{id}`."""
        return {
            "id": self.id,
            "object": "job",
            "status": self.status.value,
            "surface": self.surface,
            "model": self.model,
            "endpoint_id": self.endpoint_id,
            "runpod": {"id": self.runpod_id, "status": self.runpod_status},
            "created": int(self.created),
            "started": int(self.started) if self.started else None,
            "finished": int(self.finished) if self.finished else None,
            "result": self.result,
            "error": self.error,
            "cost": self.cost,
        }


# Compare-and-set: change status (and fields) only from one of the allowed statuses.
# KEYS: job hash, pending set, event stream, change channel, job's log, the key's jobs in
# flight, the key's usage. ARGV: new status ('' keeps it), allowed statuses (comma list),
# ttl seconds (0: none), '1' when the job ends (drop it from pending, release its
# reservation, add a completed job's cost to the month's spend), the event as a JSON list
# of stream field/value pairs ('' for none), the log's ttl, the month ('YYYY-MM'), then
# hash field/value pairs.
# Returns {1, previous status} when applied, {0, current status} when not, {-1} if gone.
_TRANSITION = """
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {-1, ''} end
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == cur then allowed = true end end
if not allowed then return {0, cur} end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'status', ARGV[1]) end
if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if ARGV[4] == '1' then
  local id = redis.call('HGET', KEYS[1], 'id')
  redis.call('ZREM', KEYS[2], id)
  local reserved = redis.call('HGET', KEYS[6], id)
  if reserved then
    redis.call('HDEL', KEYS[6], id)
    redis.call('HINCRBYFLOAT', KEYS[7], 'reserved', -tonumber(reserved))
  end
  local cost = tonumber(redis.call('HGET', KEYS[1], 'cost') or '')
  if ARGV[1] == 'completed' and cost then
    redis.call('HINCRBYFLOAT', KEYS[7], 'spend:' .. ARGV[7], cost)
    redis.call('HINCRBY', KEYS[7], 'jobs:' .. ARGV[7], 1)
  end
end
if ARGV[5] ~= '' then redis.call('XADD', KEYS[3], '*', unpack(cjson.decode(ARGV[5]))) end
if ARGV[1] ~= '' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', '100000', '*', 'type', 'status', 'status', ARGV[1])
  redis.call('EXPIRE', KEYS[5], ARGV[6])
  redis.call('PUBLISH', KEYS[4], ARGV[1])
end
return {1, cur}
"""

# Store a new job, due at once, within its key's limits. KEYS: job hash, key's index,
# pending set, wake list, key's jobs in flight, key's usage. ARGV: job id, created, when
# it is first due, the most jobs in flight ('' : no limit), the monthly budget ('' : none),
# the month, the job's estimated cost, then the hash's fields as one JSON object of strings
# (packing each field as its own argument cost the accept route more Python time than
# the rest of the write).
# Returns {1} when stored, {-1, jobs in flight} or {-2, spend, reserved} when refused.
_CREATE = """
if ARGV[4] ~= '' then
  local in_flight = redis.call('HLEN', KEYS[5])
  if in_flight >= tonumber(ARGV[4]) then return {-1, in_flight} end
end
if ARGV[5] ~= '' then
  local spend = tonumber(redis.call('HGET', KEYS[6], 'spend:' .. ARGV[6]) or '0')
  local reserved = math.max(tonumber(redis.call('HGET', KEYS[6], 'reserved') or '0'), 0)
  if spend + reserved + tonumber(ARGV[7]) > tonumber(ARGV[5]) + 1e-9 then
    return {-2, tostring(spend), tostring(reserved)}
  end
end
redis.call('HSET', KEYS[5], ARGV[1], ARGV[7])
redis.call('HINCRBYFLOAT', KEYS[6], 'reserved', ARGV[7])
local record = {}
for name, value in pairs(cjson.decode(ARGV[8])) do
  record[#record + 1] = name
  record[#record + 1] = value
end
redis.call('HSET', KEYS[1], unpack(record))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[1])
redis.call('LTRIM', KEYS[4], 0, 0)
return {1}
"""


@dataclass(frozen=True)
class Transition:
    """The outcome of a compare-and-set: applied or not, and the status before it."""

    applied: bool
    previous: JobStatus | None


def event_body(event_type: str, data: dict) -> str:
    """A webhook body: `{"type", "timestamp" (ISO 8601), "data"}` (Standard Webhooks)."""
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"))


def job_event(event_type: str, job: Job, data: dict) -> list[str]:
    """A job event as stream field/value pairs; its id is the webhook-id of every delivery."""
    return [
        "id", "msg_" + uuid.uuid4().hex, "type", event_type, "key_id", job.key_id, "job_id", job.id,
        "surface", job.surface, "webhook_url", job.webhook_url or "", "request_id", job.request_id or "",
        "body", event_body(event_type, data),
    ]  # fmt: skip


class JobStore:
    """Every read and write of jobs, on one Redis connection."""

    def __init__(
        self,
        conn: redis.Redis,
        result_ttl: int,
        event_data: Callable[[dict], dict] | None = None,
        metrics: Metrics | None = None,
        commits: GroupCommit | None = None,
    ):
        self.conn = conn
        self.commits = commits  # new jobs' writes, batched with other requests' (the web's hot path)
        self.metrics = metrics
        self.result_ttl = result_ttl
        self.event_data = event_data or (lambda data: data)  # e.g. link large files instead of inlining
        self._transition = conn.register_script(_TRANSITION)
        self.pending = LeasedSet(conn, PENDING)
        self._create = conn.register_script(_CREATE)

    # -- accept ---------------------------------------------------------------------

    def create(self, job: Job, due: float = 0, limits: Limits | None = None) -> None:
        """Store a new job, due at once in the pending set: that entry is its submit order.

        One atomic command (a script): the key's concurrency limit and budget checked
        (`LimitReached` when either would be crossed), the cost reserved, the record, the
        key's index, the pending entry, and a nudge that wakes an idle tracker.
        """
        record = json.dumps({name: str(value) for name, value in job.to_redis().items()}, ensure_ascii=False)
        period, cost = month(job.created), job.cost or 0.0
        in_flight_limit = limits.jobs_in_flight if limits else None
        budget = limits.monthly_budget if limits else None
        keys = [
            JOB.format(job.id),
            KEY_JOBS.format(job.key_id),
            PENDING,
            WAKE,
            IN_FLIGHT.format(job.key_id),
            USAGE.format(job.key_id),
        ]
        args = [job.id, job.created, due, "" if in_flight_limit is None else in_flight_limit, "" if budget is None else budget]
        args += [period, cost, record]
        answer = self.commits.call(self._create, keys, args) if self.commits else self._create(keys=keys, args=args)
        if answer[0] == -1:
            raise LimitReached.concurrency(in_flight_limit, int(answer[1]))
        if answer[0] == -2:
            raise LimitReached.budget(budget, period, float(answer[1]), float(answer[2]), cost)
        if job.runpod_id:
            self.index_runpod_id(job.id, job.runpod_id)
        if self.metrics is not None:
            self.metrics.inc("podrelay_job_transitions_total", surface=job.surface, status=job.status.value)

    # -- read -----------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        data = self.conn.hgetall(JOB.format(job_id))
        return Job.from_redis(data) if data else None

    def get_many(self, job_ids: list[str]) -> list[Job | None]:
        pipe = self.conn.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(JOB.format(job_id))
        return [Job.from_redis(d) if d else None for d in pipe.execute()]

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
            for job_id, job in zip(ids, self.get_many(ids), strict=False):
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
            event = job_event(EVENT_TYPES[to], after, self.event_data(after.to_api()))
        outcome = self._compare_and_set(job.id, to, allowed, event, fields, key_id=job.key_id)
        if outcome.applied:
            detail = f" (RunPod {fields['runpod_id']})" if fields.get("runpod_id") else ""
            log.info("job %s -> %s%s", outcome.previous, to.value, detail, extra=job_ids(job))
        if outcome.applied and self.metrics is not None:
            self.metrics.inc("podrelay_job_transitions_total", surface=job.surface, status=to.value)
            if to.final:
                self.metrics.observe("podrelay_job_duration_seconds", fields["finished"] - job.created, surface=job.surface)
        return outcome

    def update(self, job_id: str, only_if: tuple[JobStatus, ...] = UNFINISHED, **fields) -> Transition:
        """Write fields without changing the status, if the job is in `only_if` (unfinished)."""
        return self._compare_and_set(job_id, None, only_if, None, fields)

    def _compare_and_set(
        self, job_id: str, to: JobStatus | None, allowed, event: list | None, fields: dict, key_id: str = ""
    ) -> Transition:
        final = to is not None and to.final
        args: list = [
            to.value if to else "",
            ",".join(s.value for s in allowed),
            self.result_ttl if final else 0,
            "1" if final else "0",
        ]
        args.append(json.dumps(event, separators=(",", ":")) if event else "")
        args += [self.result_ttl, month()]
        for name, value in fields.items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value, separators=(",", ":"))
            args += [name, "" if value is None else value]
        keys = [JOB.format(job_id), PENDING, EVENTS, CHANGED.format(job_id), LOG.format(job_id)]
        keys += [IN_FLIGHT.format(key_id), USAGE.format(key_id)]
        applied, previous = self._transition(keys=keys, args=args)
        return Transition(applied == 1, JobStatus(previous.decode()) if previous else None)

    def append_output(self, job_id: str, texts: list[str]) -> None:
        """Add streamed output pieces to the job's log (kept as long as results are)."""
        if texts:
            pipe = self.conn.pipeline(transaction=False)
            for text in texts:
                pipe.xadd(LOG.format(job_id), {"type": "chunk", "text": text}, maxlen=100_000, approximate=True)
            pipe.expire(LOG.format(job_id), self.result_ttl)
            pipe.execute()

    def streamed_text(self, job_id: str) -> str:
        """All output pieces in the job's log, joined."""
        entries = self.conn.xrange(LOG.format(job_id), count=100_000)
        return "".join(fields.get(b"text", b"").decode() for _, fields in entries if fields.get(b"type") == b"chunk")

    def read_log(self, job_id: str, after: str, block_ms: int | None) -> list[tuple[str, dict]]:
        """Log entries after stream id `after` (`0-0`: all), waiting up to `block_ms` for one."""
        answer = self.conn.xread({LOG.format(job_id): after}, count=500, block=block_ms)
        return [
            (entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()})
            for _, entries in answer or []
            for entry_id, fields in entries
        ]

    def set_runpod_id(self, job_id: str, runpod_id: str) -> None:
        """Record the RunPod id even on a job that is already final."""
        self.conn.hset(JOB.format(job_id), "runpod_id", runpod_id)
        self.index_runpod_id(job_id, runpod_id)

    def index_runpod_id(self, job_id: str, runpod_id: str) -> None:
        self.conn.set(BY_RUNPOD_ID.format(runpod_id), job_id, ex=self.result_ttl)

    def by_runpod_id(self, runpod_id: str) -> Job | None:
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
        pipe.hset(IN_FLIGHT.format(job.key_id), job.id, job.cost or 0.0)  # it runs, and costs, again
        pipe.hincrbyfloat(USAGE.format(job.key_id), "reserved", job.cost or 0.0)
        pipe.execute()

    def set_runpod_status(self, job_id: str, runpod_status: str) -> None:
        self.conn.hset(JOB.format(job_id), "runpod_status", runpod_status)

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
