"""RunPod's own operations, on behalf of one API key: the work of the `/v1/runpod/...` routes.

These routes are a RunPod proxy by nature (seed 002), so they call RunPod from the web
process, here and nowhere else in it. A `run` or `runsync` is also a tracked job, so its
webhooks fire; status, stream, cancel and retry are allowed only on RunPod jobs this key
started, and they bring the job's record up to date with what RunPod answered.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from marshmallow import Schema, fields, validate

from integration import surfaces
from integration.accounts import limits
from integration.accounts.keys import Caller
from integration.errors import ApiError, not_found, validation_error
from integration.jobs.outcomes import apply_status
from integration.jobs.record import UNFINISHED, Job, JobStatus
from integration.runpod.client import RunPodError, RunPodNotFound, RunPodUnavailable
from integration.surfaces.fields import PolicySchema, WebhookUrl

if TYPE_CHECKING:
    from integration.resources import Resources

_ENDPOINT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class DirectRunSchema(Schema):
    """The body of `/run` and `/runsync`: RunPod's `input`, and podrelay's model, webhook_url, policy."""

    input = fields.Dict(required=True)
    model = fields.String(validate=validate.Length(min=1, max=200))
    webhook_url = WebhookUrl()
    policy = fields.Nested(PolicySchema)


class RunPodDirect:
    """The direct routes' operations for one process's resources."""

    def __init__(self, resources: Resources):
        self.res = resources

    @staticmethod
    def surface(name: str) -> surfaces.Surface:
        """The surface named in the route, or 404."""
        surface = surfaces.SURFACES.get(name)
        if surface is None:
            raise ApiError(404, "not_found", f"No surface '{name}'; surfaces: {', '.join(surfaces.SURFACES)}")
        return surface

    def endpoint(self, surface_name: str, override: str | None) -> tuple[surfaces.Surface, str]:
        """The surface and the endpoint to call: `?endpoint_id=` or the surface's routing."""
        surface = self.surface(surface_name)
        if override is not None:
            if not _ENDPOINT_ID.match(override):
                raise validation_error("Invalid value for 'endpoint_id': 1 to 64 letters, digits, '_' or '-'.", "endpoint_id")
            return surface, override
        return surface, surface.resolve({}, self.res.settings)[1]

    def call(self, operation: Callable[[], dict]) -> dict:
        """A RunPod call, its failures as API errors."""
        try:
            return operation()
        except RunPodNotFound as error:
            raise ApiError(404, "not_found", f"RunPod: {error}") from None
        except RunPodUnavailable as error:
            headers = {"Retry-After": str(int(error.retry_after))} if error.retry_after else None
            raise ApiError(502, "provider_error", f"Upstream provider returned error: {error}", headers=headers) from None
        except RunPodError as error:
            raise ApiError(502, "provider_error", f"Upstream provider returned error: {error}") from None

    def run(
        self, caller: Caller, surface: surfaces.Surface, endpoint_id: str, body: dict, request_id: str, wait_ms: int | None = None
    ) -> dict:
        """Submit (and with `wait_ms`, wait like RunPod's runsync); the job is tracked from here on.

        The key's limits are checked before RunPod is called; the job then counts against them.
        """
        key_id = caller.key_id
        limits.check(self.res.redis, key_id, caller.limits)
        job_id = str(uuid.uuid4())
        settings = self.res.settings
        webhook = self.res.tokens.url(settings.public_base_url, job_id) if settings.public_base_url else None
        runpod = self.res.runpod
        if wait_ms is None:
            answer = self.call(lambda: runpod.run(endpoint_id, body["input"], webhook=webhook, policy=body.get("policy")))
        else:
            answer = self.call(
                lambda: runpod.runsync(endpoint_id, body["input"], wait_ms=wait_ms, webhook=webhook, policy=body.get("policy"))
            )
        now = time.time()
        job = Job(
            id=job_id,
            key_id=key_id,
            surface=surface.name,
            model=body.get("model") or surface.default_model,
            endpoint_id=endpoint_id,
            status=JobStatus.SUBMITTED,
            created=now,
            submitted=now,
            input=body["input"],
            runpod_id=answer.get("id"),
            runpod_status=answer.get("status"),
            webhook_url=body.get("webhook_url"),
            policy=body.get("policy"),
            request_id=request_id,
        )
        due = now + (settings.callback_poll_after if settings.public_base_url else settings.poll_min_interval)
        self.res.jobs.create(job, due=due)
        if answer.get("status") not in (None, "IN_QUEUE"):
            apply_status(self.res.jobs, job, answer)
        return {**answer, "podrelay_job_id": job.id}

    def owned(self, key_id: str, runpod_id: str) -> Job:
        """The job RunPod knows as `runpod_id`, if this key started it; else 404."""
        job = self.res.jobs.by_runpod_id(runpod_id)
        if job is None or job.key_id != key_id:
            raise not_found("Job")
        return job

    def status(self, job: Job) -> dict:
        """RunPod's status of the job; an unfinished job's record follows it."""
        answer = self.call(lambda: self.res.runpod.status(job.endpoint_id, job.runpod_id))
        if not job.status.final:
            apply_status(self.res.jobs, job, answer)
        return answer

    def stream(self, job: Job) -> dict:
        """The pieces RunPod has produced since the last read."""
        return self.call(lambda: self.res.runpod.stream(job.endpoint_id, job.runpod_id))

    def cancel(self, job: Job) -> dict:
        """Cancel at RunPod; the job ends `cancelled`."""
        answer = self.call(lambda: self.res.runpod.cancel(job.endpoint_id, job.runpod_id))
        self.res.jobs.transition(
            job, JobStatus.CANCELLED, UNFINISHED, runpod_status=answer.get("status", "CANCELLED"),
            error={"code": "cancelled", "message": "Cancelled at the client's request"},
        )  # fmt: skip
        return answer

    def retry(self, job: Job) -> dict:
        """Run a failed or timed-out job again at RunPod; it is tracked again."""
        answer = self.call(lambda: self.res.runpod.retry(job.endpoint_id, job.runpod_id))
        if job.status.final:
            self.res.jobs.reopen(job, answer.get("status", "IN_QUEUE"))
        return answer

    def purge_queue(self, endpoint_id: str) -> dict:
        """Remove every queued job of the endpoint at RunPod."""
        return self.call(lambda: self.res.runpod.purge_queue(endpoint_id))

    def health(self, endpoint_id: str) -> dict:
        """The endpoint's workers and jobs, as RunPod counts them."""
        return self.call(lambda: self.res.runpod.health(endpoint_id))
