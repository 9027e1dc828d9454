"""RunPod's own operations, on behalf of one API key: the work of the `/v1/runpod/...` routes.

These routes are a RunPod proxy by nature (seed 002), so they call RunPod from the web
process, here and nowhere else in it. A `run` or `runsync` is also a tracked job, stored
before RunPod is called (so a callback that comes at once finds it) and answered with its
podrelay id whatever RunPod says. RunPod's own `/run` fields are taken as RunPod documents
them (runpod/docs, `serverless/endpoints/send-requests.mdx`): `webhook` is the client's URL,
which gets podrelay's signed delivery (podrelay's own callback stays RunPod's webhook),
`s3Config` and `policy` go to RunPod as given. Status, stream, cancel and retry are allowed
only on RunPod jobs this key started. A job's stream is read from RunPod once, by podrelay,
into the job's log, and every reader gets every piece from there (RunPod hands each piece
out once).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from marshmallow import Schema, fields, validate

from integration import adapters, surfaces
from integration.accounts.keys import Caller
from integration.errors import ApiError, not_found, validation_error
from integration.jobs.accept import RUN_MAX_BYTES, RUNSYNC_MAX_BYTES, check_payload
from integration.jobs.outcomes import apply_status
from integration.jobs.record import UNFINISHED, Job, JobStatus
from integration.runpod import purges
from integration.runpod.client import RunPodError, RunPodNotFound, RunPodUnavailable
from integration.surfaces.fields import PolicySchema, WebhookUrl

if TYPE_CHECKING:
    from integration.resources import Resources

_ENDPOINT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RUNPOD_STATUS = {
    JobStatus.COMPLETED: "COMPLETED",
    JobStatus.FAILED: "FAILED",
    JobStatus.CANCELLED: "CANCELLED",
    JobStatus.TIMED_OUT: "TIMED_OUT",
}


class S3ConfigSchema(Schema):
    """RunPod's `s3Config`: a bucket the worker may upload to."""

    accessId = fields.String(required=True, validate=validate.Length(min=1, max=256))  # noqa: N815 (RunPod's names)
    accessSecret = fields.String(required=True, validate=validate.Length(min=1, max=256))  # noqa: N815
    bucketName = fields.String(required=True, validate=validate.Length(min=1, max=256))  # noqa: N815
    endpointUrl = fields.String(required=True, validate=validate.Length(min=1, max=2048))  # noqa: N815


class DirectRunSchema(Schema):
    """The body of `/run` and `/runsync`: RunPod's `input`, `webhook`, `policy`, `s3Config`, and podrelay's `model`, `webhook_url`."""

    input = fields.Dict(required=True)
    model = fields.String(validate=validate.Length(min=1, max=200))
    webhook_url = WebhookUrl()
    webhook = WebhookUrl()  # RunPod's name for it
    policy = fields.Nested(PolicySchema)
    s3Config = fields.Nested(S3ConfigSchema)  # noqa: N815


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

    def endpoint(self, surface_name: str, override: str | None, caller: Caller) -> tuple[surfaces.Surface, str]:
        """The surface and the endpoint to call: `?endpoint_id=` or the surface's routing. A key
        may name only endpoints podrelay is configured with; an admin key may name any of the
        operator's RunPod account."""
        surface = self.surface(surface_name)
        if override is not None:
            if not _ENDPOINT_ID.match(override):
                raise validation_error("Invalid value for 'endpoint_id': 1 to 64 letters, digits, '_' or '-'.", "endpoint_id")
            if not caller.admin and override not in self.res.settings.endpoints.values():
                message = "endpoint_id must be one of the endpoints podrelay is configured with (an admin key may name others)"
                raise ApiError(403, "permission_denied", message, param="endpoint_id")
            return surface, override
        return surface, surface.resolve({}, self.res.settings)[1]

    def spend(self, budget: str, endpoint_id: str) -> None:
        """Count a call in the endpoint's shared budget (the trackers' too); a 429 when it is spent."""
        if not self.res.runpod_budgets[budget].take(endpoint_id, 1, time.time()):
            message = f"RunPod's /{budget} budget for this endpoint is spent this second; retry shortly"
            raise ApiError(429, "runpod_budget_exceeded", message, headers={"Retry-After": "1"})

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
        """Store the job, submit it (with `wait_ms`, wait like RunPod's runsync), and track it from here on.

        The key's limits are checked first; the job then counts against them."""
        settings = self.res.settings
        check_payload(body["input"], body.get("policy"), RUN_MAX_BYTES if wait_ms is None else RUNSYNC_MAX_BYTES)
        self.spend("run", endpoint_id)
        model = body.get("model") or surface.default_model
        now = time.time()
        job = Job.queued(
            caller.key_id,
            surface.name,
            model,
            endpoint_id,
            body["input"],
            created=now,
            webhook_url=body.get("webhook_url") or body.get("webhook"),
            policy=body.get("policy"),
            request_id=request_id,
            worker=adapters.worker_for(settings, surface.name, model),
            direct=True,
            cost=self.estimate(surface, model, body["input"]),
        )
        # Due only after a lease: the tracker never submits a direct job; it finds one whose
        # submission this process never recorded (it died mid-call) and fails it. Stored within
        # the key's limits: the cost is reserved, and charged when the job completes.
        self.res.jobs.create(job, due=now + settings.lease_seconds + (wait_ms or 0) / 1000 + 30, limits=caller.limits)
        webhook = self.res.tokens.url(settings.public_base_url, job.id) if settings.public_base_url else None
        runpod = self.res.runpod
        options = {"webhook": webhook, "policy": body.get("policy"), "s3_config": body.get("s3Config")}
        try:
            if wait_ms is None:
                answer = self.call(lambda: runpod.run(endpoint_id, body["input"], **options))
            else:
                answer = self.call(lambda: runpod.runsync(endpoint_id, body["input"], wait_ms=wait_ms, **options))
        except ApiError as error:
            message = error.message.removeprefix("Upstream provider returned error: ")
            failure = {"code": "provider_error", "message": f"RunPod refused the job: {message}"}
            self.res.jobs.transition(job, JobStatus.FAILED, (JobStatus.QUEUED,), error=failure)
            error.details = {**(error.details or {}), "podrelay_job_id": job.id}
            raise
        self._record_submission(job, answer)
        return {**answer, "podrelay_job_id": job.id}

    def estimate(self, surface: surfaces.Surface, model: str, job_input: dict) -> float:
        """A direct job's estimated cost: RunPod's input read as the surface's request where the
        names agree (worker-vllm's `openai_input`, an image worker's `num_images`, `width`,
        `height`), else the surface's price for a minimal request."""
        request = {**job_input, **(job_input.get("openai_input") or {})}
        if isinstance(request.get("num_images"), int):
            request.setdefault("n", request["num_images"])
        if isinstance(request.get("width"), int) and isinstance(request.get("height"), int):
            request.setdefault("size", f"{request['width']}x{request['height']}")
        for probe in (request, {"messages": [], "input": ""}):
            try:
                return self.res.prices.cost(surface, model, probe)
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
        return 0.0

    def _record_submission(self, job: Job, answer: dict) -> None:
        runpod_id = answer.get("id")
        if runpod_id:
            self.res.jobs.index_runpod_id(job.id, runpod_id)
        now = time.time()
        fields = {"runpod_id": runpod_id, "runpod_status": answer.get("status", "IN_QUEUE"), "submitted": now}
        outcome = self.res.jobs.transition(job, JobStatus.SUBMITTED, (JobStatus.QUEUED,), **fields)
        if not outcome.applied:  # a callback (runsync) ended it already
            if runpod_id:
                self.res.jobs.set_runpod_id(job.id, runpod_id)
            return
        settings = self.res.settings
        first_look = settings.callback_poll_after if settings.public_base_url else settings.poll_min_interval
        self.res.jobs.pending.schedule(job.id, now + first_look)
        if answer.get("status") not in (None, "IN_QUEUE"):
            apply_status(self.res.jobs, self.res.jobs.get(job.id), answer)

    def owned(self, key_id: str, runpod_id: str) -> Job:
        """The job RunPod knows as `runpod_id`, if this key started it; else 404."""
        job = self.res.jobs.by_runpod_id(runpod_id)
        if job is None or job.key_id != key_id:
            raise not_found("Job")
        return job

    def status(self, job: Job) -> dict:
        """RunPod's status of the job; an unfinished job's record follows it. A finished job
        RunPod has forgotten (after 30 minutes) is answered from podrelay's record."""
        try:
            self.spend("status", job.endpoint_id)
            answer = self.call(lambda: self.res.runpod.status(job.endpoint_id, job.runpod_id))
        except ApiError as error:
            if error.status != 404 or not job.status.final:
                raise
            answer = {"id": job.runpod_id, "status": RUNPOD_STATUS[job.status]}
            output = self.res.jobs.shown(job)["result"]  # stored files as signed links
            answer.update({"output": output} if job.result is not None else {"error": (job.error or {}).get("message")})
            return answer
        if not job.status.final:
            apply_status(self.res.jobs, job, answer)
        return answer

    def stream(self, job: Job, after: str | None) -> tuple[dict, str | None]:
        """The pieces after the reader's cursor (`after`; None: the cursor of readers without one),
        and the cursor to keep. The first reader makes podrelay relay the job's stream."""
        if not job.streaming:
            self._start_relay(job)
            job = self.res.jobs.get(job.id) or job
        status = RUNPOD_STATUS[job.status] if job.status.final else (job.runpod_status or "IN_QUEUE")  # before the pieces
        log = self.res.jobs.log
        pieces = log.pieces(job.id, after if after is not None else log.shared_cursor(job.id))
        cursor = pieces[-1][0] if pieces else after
        if after is None and pieces:
            log.set_shared_cursor(job.id, cursor)
        return {"id": job.runpod_id, "status": status, "stream": [{"output": piece} for _, piece in pieces]}, cursor

    def _start_relay(self, job: Job) -> None:
        """Read what RunPod has streamed so far into the log; the tracker reads the rest."""
        try:
            answer = self.res.runpod.stream(job.endpoint_id, job.runpod_id)
        except RunPodNotFound:
            answer = {}
        except RunPodError as error:
            raise ApiError(502, "provider_error", f"Upstream provider returned error: {error}") from None
        pieces = [item.get("output") for item in answer.get("stream") or [] if isinstance(item, dict)]
        self.res.jobs.log.append_pieces(job.id, pieces)
        self.res.jobs.relay_stream(job.id)

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

    def purge_queue(self, endpoint_id: str, caller: Caller) -> dict:
        """Remove every queued job of the endpoint at RunPod: every key's, so admin keys only.
        podrelay's jobs it removed end `cancelled`, saying so."""
        if not caller.admin:
            raise ApiError(403, "permission_denied", "purge-queue removes every key's queued jobs: it needs an admin key")
        answer = self.call(lambda: self.res.runpod.purge_queue(endpoint_id))
        purges.record(self.res.redis, endpoint_id)
        return answer

    def health(self, endpoint_id: str, caller: Caller) -> dict:
        """The endpoint's workers and jobs, as RunPod counts them; a key that is not an admin's
        sees the workers only (the jobs are every key's)."""
        answer = self.call(lambda: self.res.runpod.health(endpoint_id))
        if not caller.admin:
            return {"workers": answer.get("workers", {})}
        return {**answer, "circuit": self.res.circuits.state(endpoint_id)}  # podrelay's own view: closed | open | half_open
