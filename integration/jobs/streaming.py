"""A job's events as they happen: the iterator behind Server-Sent Events and WebSocket.

Events come from the job's log (a Redis stream, `log.py`): `status` on every change,
`chunk` for each streamed chat chunk (its text and choices), `piece` for each of a direct
job's RunPod stream pieces, and finally `job`, the whole job once it is final. Log
entry ids are the events' ids, so a client that reconnects with `Last-Event-ID` gets
exactly what it missed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from integration.errors import validation_error
from integration.jobs.record import Job, JobStatus
from integration.jobs.store import JobStore
from integration.jobs.waiting import LIVENESS_EVERY, JobWaiter

KEEPALIVE = 15.0  # seconds of silence before a keep-alive
_EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_FINAL = {s.value for s in JobStatus if s.final}


@dataclass(frozen=True)
class JobEvent:
    """One event of a job's stream: its name, its data, and its id (the log entry's)."""

    name: str  # status | chunk | piece | progress | job | keepalive | revoked
    data: dict
    id: str | None = None


def valid_event_id(value: str | None, param: str = "Last-Event-ID") -> str:
    """A client's `Last-Event-ID`, or `0-0` (from the start) when absent or malformed; a 400 for
    one shaped like an event id but past what a Redis stream id holds (two 64-bit numbers)."""
    if not value or not _EVENT_ID.match(value):
        return "0-0"
    if any(int(part) >= 2**64 for part in value.split("-")):
        raise validation_error(f"Invalid value for '{param}': not an event id of this stream.", param)
    return value


def job_events(
    store: JobStore,
    waiter: JobWaiter,
    job: Job,
    after: str = "0-0",
    deadline: float | None = None,
    alive: Callable[[], bool] | None = None,
) -> Iterator[JobEvent]:
    """Events after `after` until the job is final (then its `job` event), `deadline` passes,
    or `alive()` says the reader's key was revoked (then a `revoked` event). Between events the
    reader waits on the job's change channel (`waiting.py`), holding no Redis connection."""
    last, quiet_since = after, time.monotonic()
    with waiter.watching(job.id) as changed:
        first = True
        while deadline is None or time.monotonic() < deadline:
            changed.clear()
            entries = store.log.read(job.id, last, block_ms=None)
            if not entries:
                # Nothing new. On the first look, or after a long silence, make sure the job is
                # not already over (its log may have expired, or never been written).
                if first or time.monotonic() - quiet_since > KEEPALIVE:
                    current = store.get(job.id)
                    if current is None or current.status.final:
                        if current is not None:
                            yield JobEvent("job", store.shown(current))
                        return
                    if not first:
                        quiet_since = time.monotonic()
                        yield JobEvent("keepalive", {})
                first = False
                if alive is not None and not alive():
                    yield JobEvent("revoked", {"message": "The API key was revoked"})
                    return
                limit = LIVENESS_EVERY if deadline is None else max(0.0, min(LIVENESS_EVERY, deadline - time.monotonic()))
                changed.wait(limit)
                continue
            first, quiet_since = False, time.monotonic()
            for entry_id, fields in entries:
                last = entry_id
                if fields.get("type") == "chunk":
                    chunk = json.loads(fields["chunk"]) if fields.get("chunk") else {}
                    yield JobEvent("chunk", {"text": fields.get("text", ""), "choices": chunk.get("choices", [])}, entry_id)
                    continue
                if fields.get("type") == "piece":
                    yield JobEvent("piece", {"output": json.loads(fields.get("output", "null"))}, entry_id)
                    continue
                if fields.get("type") == "progress":
                    yield JobEvent("progress", {"progress": json.loads(fields.get("progress", "null"))}, entry_id)
                    continue
                yield JobEvent("status", {"status": fields.get("status")}, entry_id)
                if fields.get("status") in _FINAL:
                    current = store.get(job.id)
                    if current is not None:
                        yield JobEvent("job", store.shown(current))
                    return
