"""The RQ tasks the web side and the tracker enqueue, named once.

Tasks are enqueued by dotted name, so the web process never imports worker code.
The submit task has a stable RQ id (`submit-{job id}`) so the tracker can tell a
submission that is still queued or running from one whose worker died.
"""

from __future__ import annotations

from rq import Queue, Retry

SUBMIT = "workers.submit.submit_job"
CANCEL = "workers.submit.cancel_job"
# Held while a worker submits a job; it expires after SUBMIT_STALL_AFTER (default 60 s,
# beyond the client's worst case of connect 5 s + read 30 s), so a killed worker's
# submission is taken up again by the tracker.
SUBMIT_LOCK = "pr:lock:submit:{}"
CANCEL_RETRY = Retry(max=3)  # immediate retries: delayed ones need a forked RQ scheduler


QUEUE_KEY = "rq:queue:{}"


def submit_task_id(job_id: str) -> str:
    return f"submit-{job_id}"


def enqueue_submit(queue: Queue, job_id: str, pipeline=None) -> None:
    queue.enqueue_call(
        SUBMIT, args=(job_id,), job_id=submit_task_id(job_id), result_ttl=0, failure_ttl=24 * 3600, pipeline=pipeline
    )


def enqueue_cancel(queue: Queue, job_id: str) -> None:
    queue.enqueue_call(CANCEL, args=(job_id,), result_ttl=0, at_front=True, retry=CANCEL_RETRY)
