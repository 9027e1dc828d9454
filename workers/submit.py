"""RQ tasks that talk to RunPod on a job's behalf: submit it, cancel it.

`submit_job` retries nothing itself beyond the client's short retries: when RunPod is
unavailable (429, 5xx, no answer) it leaves the job queued and due later in the pending
set, and the tracker enqueues the task again then. The job is never dropped.
"""

from __future__ import annotations

import logging
import time

from integration.jobs import JobStatus
from integration.runpod import RunPodAuthError, RunPodError, RunPodNotFound, RunPodUnavailable
from integration.tasks import SUBMIT_LOCK, enqueue_cancel
from workers import context
from workers.schedule import first_poll_delay, submit_retry_delay

log = logging.getLogger(__name__)


def submit_job(job_id: str) -> str:
    """POST the job to RunPod's `/run`, record its RunPod id, and schedule its tracking."""
    res = context.resources()
    job = res.jobs.get(job_id)
    if job is None or job.status != JobStatus.QUEUED:
        return "skipped"
    if not res.redis.set(SUBMIT_LOCK.format(job_id), "1", nx=True, ex=max(1, int(res.settings.submit_stall_after))):
        return "busy"  # another worker is submitting it right now
    try:
        return _submit(res, job)
    finally:
        res.redis.delete(SUBMIT_LOCK.format(job_id))


def _submit(res, job) -> str:
    attempts = job.submit_attempts + 1
    res.jobs.update(job.id, submit_attempts=attempts)
    settings = res.settings
    webhook = res.tokens.url(settings.public_base_url, job.id) if settings.public_base_url else None
    try:
        answer = res.runpod.run(job.endpoint_id, job.input, webhook=webhook, policy=job.policy)
    except (RunPodUnavailable, RunPodAuthError) as error:
        # Transient, or an operator's key to fix: the job waits in the pending set.
        delay = submit_retry_delay(attempts, error.retry_after)
        log.warning("job %s: submit attempt %d failed (%s); again in %.0fs", job.id, attempts, error, delay)
        res.jobs.update(job.id, error={"code": "provider_unavailable", "message": str(error)})
        res.jobs.schedule(job.id, time.time() + delay)
        return "deferred"
    except (RunPodNotFound, RunPodError) as error:
        res.jobs.transition(
            job.id,
            JobStatus.FAILED,
            (JobStatus.QUEUED,),
            error={"code": "provider_error", "message": f"RunPod refused the job: {error}"},
        )
        return "refused"
    runpod_id = answer.get("id")
    now = time.time()
    outcome = res.jobs.transition(
        job.id,
        JobStatus.SUBMITTED,
        (JobStatus.QUEUED,),
        runpod_id=runpod_id,
        runpod_status=answer.get("status", "IN_QUEUE"),
        submitted=now,
        error=None,
    )
    if outcome.applied:
        res.jobs.schedule(job.id, now + first_poll_delay(settings))
        return "submitted"
    # Cancelled meanwhile, or already finished by a fast callback: keep the RunPod id.
    res.redis.hset(f"pr:job:{job.id}", "runpod_id", runpod_id)
    if outcome.previous == JobStatus.CANCELLED:
        enqueue_cancel(res.queue, job.id)
    return "submitted"


def cancel_job(job_id: str) -> str:
    """Cancel a (locally cancelled) job at RunPod. Retried by RQ while RunPod is unavailable."""
    res = context.resources()
    job = res.jobs.get(job_id)
    if job is None or not job.runpod_id:
        return "nothing to cancel"
    try:
        answer = res.runpod.cancel(job.endpoint_id, job.runpod_id)
    except RunPodNotFound:
        return "unknown at RunPod"
    res.redis.hset(f"pr:job:{job.id}", "runpod_status", answer.get("status", "CANCELLED"))
    return "cancelled"
