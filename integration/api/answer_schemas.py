"""The shapes of podrelay's answers, as marshmallow schemas: the OpenAPI document's
response bodies (`integration/openapi.py`). Objects may gain fields, so none is closed.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class _Open(Schema):
    class Meta:
        unknown = INCLUDE


def _nullable(field_class, **kwargs):
    return field_class(allow_none=True, required=True, **kwargs)


class ErrorBodySchema(_Open):
    message = fields.String(required=True)
    type = fields.String(required=True)
    code = fields.String(required=True)
    param = _nullable(fields.String)
    request_id = _nullable(fields.String)
    details = fields.Dict(
        metadata={"description": "rate_limit_exceeded: limit, window, retry_after_secs; budget_exceeded: budget, spend"}
    )


class ErrorSchema(_Open):
    error = fields.Nested(ErrorBodySchema, required=True)


class RunPodRefSchema(_Open):
    id = _nullable(fields.String)
    status = _nullable(fields.String)


class EnqueueSchema(_Open):
    id = fields.String(required=True)
    object = fields.String(required=True)
    created = fields.Integer(required=True)
    status = fields.String(required=True)
    surface = fields.String(required=True)
    model = fields.String(required=True)
    endpoint_id = fields.String(required=True)
    runpod = fields.Nested(RunPodRefSchema, required=True)


class JobSchema(_Open):
    id = fields.String(required=True)
    object = fields.String(required=True, metadata={"enum": ["job"]})
    status = fields.String(
        required=True, metadata={"enum": ["queued", "submitted", "running", "completed", "failed", "cancelled", "timed_out"]}
    )
    surface = fields.String(required=True)
    model = fields.String(required=True)
    endpoint_id = fields.String(required=True)
    runpod = fields.Nested(RunPodRefSchema, required=True)
    created = fields.Integer(required=True)
    started = _nullable(fields.Integer)
    finished = _nullable(fields.Integer)
    result = _nullable(fields.Dict)
    error = _nullable(fields.Dict)
    cost = _nullable(fields.Float)
    progress = fields.Raw(allow_none=True, metadata={"description": "The worker's last progress report while it runs"})


class JobListSchema(_Open):
    object = fields.String(required=True)
    data = fields.List(fields.Nested(JobSchema), required=True)
    has_more = fields.Boolean(required=True)
    next_cursor = _nullable(fields.String)


class PriceSchema(_Open):
    object = fields.String(required=True)
    surface = fields.String(required=True)
    model = fields.String(required=True)
    currency = fields.String(required=True)
    unit = fields.String(required=True)
    units = fields.Float(required=True)
    unit_price = fields.Float(required=True)
    estimated_cost = fields.Float(required=True)


class ModelListSchema(_Open):
    object = fields.String(required=True)
    data = fields.List(fields.Dict(), required=True)


class UsageSchema(_Open):
    object = fields.String(required=True)
    key_id = fields.String(required=True)
    limits = fields.Dict(required=True)
    usage = fields.Dict(required=True)


class SubscriptionSchema(_Open):
    id = fields.String(required=True)
    object = fields.String(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True)
    surfaces = fields.List(fields.String(), required=True)
    description = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["enabled", "disabled"]})
    disabled_reason = _nullable(fields.String)
    created = fields.Integer(required=True)
    last_success = _nullable(fields.Integer)
    failing_since = _nullable(fields.Integer)
    secret = fields.String(metadata={"description": "Only when created or rotated"})


class SubscriptionListSchema(_Open):
    object = fields.String(required=True)
    data = fields.List(fields.Nested(SubscriptionSchema), required=True)


class DeletedSchema(_Open):
    id = fields.String(required=True)
    object = fields.String(required=True)
    deleted = fields.Boolean(required=True)


class TestEventSchema(_Open):
    object = fields.String(required=True)
    id = fields.String(required=True)
    type = fields.String(required=True)
    webhook_id = fields.String(required=True)


class DeliverySchema(_Open):
    id = fields.String(required=True)
    object = fields.String(required=True)
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    webhook_id = _nullable(fields.String)
    url = fields.String(required=True)
    status = fields.String(required=True)
    attempt_count = fields.Integer(required=True)
    last_status_code = _nullable(fields.Integer)
    error = _nullable(fields.String)
    created = fields.Integer(required=True)
    attempts = fields.List(fields.Dict())


class DeliveryListSchema(_Open):
    object = fields.String(required=True)
    data = fields.List(fields.Nested(DeliverySchema), required=True)


class SigningSecretSchema(_Open):
    secret = fields.String(required=True)
    previous_secret_expires = fields.Integer()


class RunPodAnswerSchema(_Open):
    """RunPod's own answer, passed through (seed 002); `run` and `runsync` add `podrelay_job_id`."""


class OpenAIObjectSchema(_Open):
    """An object in OpenAI's shape (chat.completion, list of embeddings, images, transcription)."""


class HealthSchema(_Open):
    status = fields.String(required=True)
    checks = fields.Dict()


class RecoverySchema(_Open):
    object = fields.String(required=True)
    subscription_id = fields.String(required=True)
    recovered = fields.Integer(required=True)
    delivery_ids = fields.List(fields.String(), required=True)
