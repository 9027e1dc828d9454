"""Talking to RunPod on a job's behalf: submit it (a tracker step), cancel it (an RQ task).

Submitting is a step of the tracker, not a task per job: the job's entry in the pending
set, due at once, is its durable submit order, and the tracker submits many jobs
concurrently. When RunPod is unavailable (429, 5xx, no answer) the job stays queued and
is due again after a backoff that honours `Retry-After`; it is never dropped.
"""

from __future__ import annotations

import logging
import time

from integration.accounts.keys import list_keys
from integration.jobs import deadlines
from integration.jobs.events import PROGRESS_EVENT
from integration.jobs.record import Job, JobStatus
from integration.jobs.tasks import enqueue_cancel
from integration.resources import Resources
from integration.runpod import refusals
from integration.runpod.client import RunPodAuthError, RunPodClient, RunPodError, RunPodNotFound, RunPodUnavailable
from integration.webhooks import operational
from workers import context
from workers.schedule import first_poll_delay, retry_delay

log = logging.getLogger(__name__)

# Held while a tracker submits a job; it expires after LEASE_SECONDS (default 60 s,
# beyond the client's worst case of connect 5 s + read 30 s).
SUBMIT_LOCK = "pr:lock:submit:{}"


def submit(res: Resources, runpod: RunPodClient, job: Job) -> str:
    """POST the job to RunPod's `/run`, record its RunPod id, and schedule its tracking."""
    # The lock outlives the slowest /run call (LEASE_SECONDS > connect + read
    # timeouts), so a job is never sent twice by two trackers whose leases overlapped.
    if not res.redis.set(SUBMIT_LOCK.format(job.id), "1", nx=True, ex=max(1, int(res.settings.lease_seconds))):
        return "busy"
    try:
        return _submit(res, runpod, job)
    finally:
        res.redis.delete(SUBMIT_LOCK.format(job.id))


def _submit(res: Resources, runpod: RunPodClient, job: Job) -> str:
    attempts = job.submit_attempts + 1
    if not res.jobs.update(job.id, only_if=(JobStatus.QUEUED,), submit_attempts=attempts).applied:
        return "skipped"  # cancelled or finished meanwhile
    if job.deadline and time.time() >= job.deadline:  # never sent to RunPod after its deadline
        res.jobs.transition(job, JobStatus.CANCELLED, (JobStatus.QUEUED,), error=deadlines.ERROR)
        return "deadline"
    settings = res.settings
    webhook = res.tokens.url(settings.public_base_url, job.id) if settings.public_base_url else None
    try:
        answer = runpod.run(job.endpoint_id, job.input, webhook=webhook, policy=job.policy)
    except (RunPodUnavailable, RunPodAuthError) as error:
        if error.status != 429:  # 5xx, no answer, a refused key: the endpoint's circuit counts it (429 is pacing)
            _circuit(res, job.endpoint_id, False, str(error))
        # Transient, or an operator's key to fix: the job waits in the pending set, for a while.
        if isinstance(error, RunPodAuthError):
            error_value = {"code": "runpod_auth", "message": f"RunPod rejected the API key (HTTP {error.status}): {error}"}
            log.error(
                "RunPod rejected podrelay's API key (HTTP %s) on endpoint %s: fix RUNPOD_API_KEY", error.status, job.endpoint_id
            )
            refusals.record(res.redis, error.status, job.endpoint_id, str(error))
        else:
            error_value = {"code": "provider_unavailable", "message": str(error)}
        if time.time() - job.created > settings.submit_give_up_after:
            error_value["message"] += f" (gave up after {settings.submit_give_up_after:.0f} s of trying)"
            log.error("job %s: not submitted after %d attempts; it fails: %s", job.id, attempts, error_value["message"])
            res.jobs.transition(job, JobStatus.FAILED, (JobStatus.QUEUED,), error=error_value)
            return "gave up"
        delay = retry_delay(settings, attempts, error.retry_after)
        log.warning("job %s: submit attempt %d failed (%s); again in %.0fs", job.id, attempts, error, delay)
        res.jobs.update(job.id, error=error_value)
        res.jobs.pending.schedule(job.id, time.time() + delay)
        return "deferred"
    except (RunPodNotFound, RunPodError) as error:
        res.jobs.transition(
            job,
            JobStatus.FAILED,
            (JobStatus.QUEUED,),
            error={"code": "provider_error", "message": f"RunPod refused the job: {error}"},
        )
        return "refused"
    _circuit(res, job.endpoint_id, True, "")
    runpod_id = answer.get("id")
    if refusals.last(res.redis) is not None:
        refusals.clear(res.redis)
    res.jobs.index_runpod_id(job.id, runpod_id)
    now = time.time()
    outcome = res.jobs.transition(
        job,
        JobStatus.SUBMITTED,
        (JobStatus.QUEUED,),
        runpod_id=runpod_id,
        runpod_status=answer.get("status", "IN_QUEUE"),
        submitted=now,
        error=None,
    )
    if outcome.applied:
        res.jobs.pending.schedule(job.id, now + first_poll_delay(settings, job.streaming, job.asked_for(PROGRESS_EVENT)))
        return "submitted"
    # Cancelled meanwhile, or already finished by a fast callback: keep the RunPod id.
    res.jobs.set_runpod_id(job.id, runpod_id)
    if outcome.previous == JobStatus.CANCELLED:
        enqueue_cancel(res.queue, job.id)
    return "submitted"


def cancel_job(job_id: str) -> str:
    """RQ task: cancel a (locally cancelled) job at RunPod; RQ retries it on failure."""
    res = context.resources()
    job = res.jobs.get(job_id)
    if job is None or not job.runpod_id:
        return "nothing to cancel"
    try:
        answer = res.runpod.cancel(job.endpoint_id, job.runpod_id)
    except RunPodNotFound:
        return "unknown at RunPod"
    res.jobs.set_runpod_status(job.id, answer.get("status", "CANCELLED"))
    return "cancelled"


def _circuit(res: Resources, endpoint_id: str, ok: bool, error: str) -> None:
    """A /run outcome for the endpoint's circuit; when it opens or closes, admin keys hear of it."""
    before, after = res.circuits.record(endpoint_id, ok, time.time())
    if after != before and after in ("open", "closed") and not (before == "half_open" and after == "open"):
        admins = [key.id for key in list_keys(res.redis) if key.admin and not key.revoked]
        detail = {"error": error or None, "cooldown": res.settings.circuit_cooldown}
        operational.endpoint_changed(res.redis, admins, endpoint_id, after, detail)
