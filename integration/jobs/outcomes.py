"""How a RunPod status payload moves a job: the one place that maps RunPod's states to ours.

Used for provider callbacks and for polls alike (RunPod's webhook body is the same
object `/status` answers: `{"id", "status", "output" | "error", ...}`).
"""

from __future__ import annotations

import logging
import time

from integration import adapters
from integration.adapters import WorkerError
from integration.files import results
from integration.jobs.record import UNFINISHED, Job, JobStatus
from integration.jobs.store import JobStore
from integration.runpod import purges
from integration.surfaces.outputs import OutputError, ResultContext

log = logging.getLogger(__name__)

_FINAL = {
    "FAILED": (JobStatus.FAILED, "worker_error", "The worker reported the job failed"),
    "CANCELLED": (JobStatus.CANCELLED, "cancelled", "The job was cancelled at RunPod"),
    "TIMED_OUT": (JobStatus.TIMED_OUT, "timed_out", "RunPod's execution timeout ran out"),
}


def result_of(job: Job, output) -> dict:
    """The job's result from the worker's output (WorkerError, or OutputError for an unreadable one).

    A direct job's input was RunPod's own, so an output podrelay cannot read is kept as it is."""
    context = ResultContext(job.id, job.model, int(job.created), job.input, job.shape or {})
    try:
        return adapters.job_result(job.worker, job.surface, output, context)
    except WorkerError:
        raise
    except OutputError:
        if job.direct:
            return {"object": "runpod.output", "output": output}
        raise


def apply_status(store: JobStore, job: Job, payload: dict, **fields) -> bool:
    """Move `job` as RunPod's `payload` says; True when the job is now final."""
    status = payload.get("status")
    fields["runpod_status"] = status
    if payload.get("id") and not job.runpod_id:
        fields["runpod_id"] = payload["id"]
    now = time.time()
    if status == "COMPLETED":
        try:
            result = result_of(job, payload.get("output"))
        except OutputError as error:
            if isinstance(error, WorkerError):
                log.warning("job %s: the worker reported an error: %s", job.id, error)
                failure = {"code": "worker_error", "message": str(error)}
            else:
                log.warning("job %s: unusable output: %s", job.id, error)
                failure = {"code": "invalid_output", "message": f"RunPod's output could not be read: {error}"}
            store.transition(job, JobStatus.FAILED, UNFINISHED, started=job.started or now, error=failure, **fields)
            return True
        if store.files is not None:  # inline files go to the blob store; the record keeps references
            result = results.kept(store.files, job.id, result)
        store.transition(job, JobStatus.COMPLETED, UNFINISHED, started=job.started or now, result=result, **fields)
        return True
    if status in _FINAL:
        state, code, default = _FINAL[status]
        error = {"code": code, "message": adapters.message_of(payload.get("error")) or default}
        if status == "FAILED":
            log.warning("job %s: RunPod reports it FAILED: %s", job.id, error["message"][:300])
        store.transition(job, state, UNFINISHED, started=job.started or now, error=error, **fields)
        return True
    moved = False
    if status == "IN_PROGRESS" and job.status != JobStatus.RUNNING:
        moved = store.transition(job, JobStatus.RUNNING, (JobStatus.QUEUED, JobStatus.SUBMITTED), started=now, **fields).applied
    if not moved:
        store.update(job.id, **fields)
    reported = payload.get("output") if status == "IN_PROGRESS" else None  # runpod-python's progress_update
    if reported is not None and reported != job.progress:
        store.progressed(job, reported)
    return False


def expire(store: JobStore, job: Job) -> None:
    """RunPod no longer knows the job (it keeps results 30 minutes): end it, saying so. A job
    that never started and was submitted before its endpoint's queue was purged was purged."""
    if job.status != JobStatus.RUNNING and purges.last(store.conn, job.endpoint_id) > (job.submitted or job.created):
        message = "Removed from RunPod's queue by an operator (purge-queue)"
        store.transition(
            job, JobStatus.CANCELLED, UNFINISHED, runpod_status="NOT_FOUND", error={"code": "cancelled", "message": message}
        )
        return
    store.transition(
        job,
        JobStatus.FAILED,
        UNFINISHED,
        runpod_status="NOT_FOUND",
        error={
            "code": "runpod_job_expired",
            "message": "RunPod no longer knows this job (it forgets jobs 30 minutes after they end)",
        },
    )
