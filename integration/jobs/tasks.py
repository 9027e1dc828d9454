"""The RQ tasks the web side enqueues, named once.

Tasks are enqueued by dotted name, so the web process never imports worker code.
"""

from __future__ import annotations

from rq import Queue, Retry

QUEUE_NAME = "podrelay"  # the RQ queue every task goes to
CANCEL = "workers.submit.cancel_job"
CANCEL_RETRY = Retry(max=3)  # immediate retries: delayed ones need a forked RQ scheduler


def enqueue_cancel(queue: Queue, job_id: str) -> None:
    """Have a worker cancel the job at RunPod (retried by RQ)."""
    queue.enqueue_call(CANCEL, args=(job_id,), result_ttl=0, at_front=True, retry=CANCEL_RETRY)
