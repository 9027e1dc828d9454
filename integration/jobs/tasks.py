"""The RQ tasks the web side enqueues, named once.

Tasks are enqueued by dotted name, so the web process never imports worker code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rq import Queue, Retry

from integration.errors import ApiError
from integration.jobs.record import UNFINISHED, Job, JobStatus

if TYPE_CHECKING:
    from integration.jobs.store import JobStore

QUEUE_NAME = "podrelay"  # the RQ queue every task goes to
CANCEL = "workers.submit.cancel_job"
CANCEL_RETRY = Retry(max=3)  # immediate retries: delayed ones need a forked RQ scheduler


def enqueue_cancel(queue: Queue, job_id: str) -> None:
    """Have a worker cancel the job at RunPod (retried by RQ)."""
    queue.enqueue_call(CANCEL, args=(job_id,), result_ttl=0, at_front=True, retry=CANCEL_RETRY)


def cancel(store: JobStore, queue: Queue, job: Job, what: str = "Job") -> Job:
    """A client's cancel: the job ends `cancelled` here at once (409 when it already ended),
    and at RunPod by a worker. A queued job is stopped by the submit task, which sees the
    cancellation before (or right after) submitting."""
    error = {"code": "cancelled", "message": "Cancelled at the client's request"}
    outcome = store.transition(job, JobStatus.CANCELLED, UNFINISHED, error=error)
    if not outcome.applied:
        raise ApiError(409, "job_not_cancellable", f"{what} is already {outcome.previous.value if outcome.previous else 'gone'}")
    if outcome.previous != JobStatus.QUEUED:
        enqueue_cancel(queue, job.id)
    return store.get(job.id)
