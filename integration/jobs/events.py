"""Events: what happened, as one typed value from where it is written to each delivery.

Every status change of a job that subscribers care about is an event (`job.started`,
`job.completed`, ...), appended to the stream `pr:events` by the same Lua script that
makes the change, so an event exists exactly when the change happened. Events that are
not status changes (`webhook.test` today) go to the same stream through `publish`. The
courier reads the stream and fans each event out to deliveries; the event's id is the
`webhook-id` of every delivery of it (Standard Webhooks).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from integration.jobs.record import Job, JobStatus

EVENTS = "pr:events"  # the stream of events, read by the courier as a consumer group

EVENT_TYPES = {
    JobStatus.RUNNING: "job.started",
    JobStatus.COMPLETED: "job.completed",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
    JobStatus.TIMED_OUT: "job.timed_out",
}
JOB_EVENT_NAMES = tuple(EVENT_TYPES.values())
PROGRESS_EVENT = "job.progress"  # a running job's progress report: only to those who ask for it
ASKABLE_EVENT_NAMES = (*JOB_EVENT_NAMES, PROGRESS_EVENT)  # what a subscription or webhook_events may name
TEST_EVENT = "webhook.test"


def event_body(event_type: str, data: dict) -> str:
    """A webhook body: `{"type", "timestamp" (ISO 8601), "data"}` (Standard Webhooks)."""
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"))


@dataclass(frozen=True)
class Event:
    """One event of one API key: its id, type, routing hints and the body to deliver."""

    id: str
    type: str
    key_id: str
    body: str
    job_id: str = ""
    surface: str = ""
    webhook_url: str = ""  # the job's own per-request target, signed with the key's secret
    request_id: str = ""  # the request that accepted the job: follows it into the logs
    only: str = ""  # a subscription id: deliver to it alone (test events)

    @classmethod
    def for_job(cls, event_type: str, job: Job, data: dict) -> Event:
        """The event of a job's change, whose body carries `data` (the job as the API shows it)."""
        return cls(
            id="msg_" + uuid.uuid4().hex,
            type=event_type,
            key_id=job.key_id,
            body=event_body(event_type, data),
            job_id=job.id,
            surface=job.surface,
            webhook_url=(job.webhook_url or "") if _wanted(job, event_type) else "",
            request_id=job.request_id or "",
        )

    def to_fields(self) -> dict[str, str]:
        """The stream entry's fields (empty ones left out)."""
        return {name: value for name, value in self.__dict__.items() if value}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Event:
        """The event from a stream entry, as XREADGROUP answers it."""
        values = {k.decode(): v.decode() for k, v in fields.items()}
        return cls(**{name: values.get(name, "") for name in cls.__dataclass_fields__})


def _wanted(job: Job, event_type: str) -> bool:
    """Whether the job's own `webhook_url` gets this event (its `webhook_events`, or every status
    change: progress reports only when asked for)."""
    return job.asked_for(event_type) if job.webhook_events else event_type != PROGRESS_EVENT


def publish(conn: redis.Redis, event: Event) -> None:
    """Append an event that is not a job's status change (those are written by the change)."""
    conn.xadd(EVENTS, event.to_fields())


class EventReader:
    """One consumer of the event stream in a consumer group (Redis streams): new events, and
    events a dead consumer read but never acknowledged; an event leaves the stream once done."""

    def __init__(self, conn: redis.Redis, group: str, consumer: str):
        self.conn = conn
        self.group = group
        self.consumer = consumer

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists."""
        try:
            self.conn.xgroup_create(EVENTS, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def read(self, count: int, block_ms: int | None, reclaim_idle_ms: int | None = None) -> list[tuple[bytes, Event | None]]:
        """Up to `count` new events (waiting up to `block_ms`), after the ones idle longer than
        `reclaim_idle_ms` that other consumers hold; None for an entry deleted meanwhile."""
        entries = []
        if reclaim_idle_ms is not None:
            entries += self.conn.xautoclaim(EVENTS, self.group, self.consumer, reclaim_idle_ms, "0-0", count=count)[1]
        for _, items in self.conn.xreadgroup(self.group, self.consumer, {EVENTS: ">"}, count=count, block=block_ms) or []:
            entries += items
        return [(entry_id, Event.from_fields(fields) if fields else None) for entry_id, fields in entries]

    def done(self, entry_ids: list[bytes]) -> None:
        """Acknowledge events whose deliveries exist, and drop them from the stream."""
        if entry_ids:
            pipe = self.conn.pipeline()
            pipe.xack(EVENTS, self.group, *entry_ids)
            pipe.xdel(EVENTS, *entry_ids)
            pipe.execute()
