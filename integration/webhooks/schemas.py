"""The webhooks API's request bodies: a subscription to create, and the changes to one."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from integration.surfaces import SURFACES
from integration.surfaces.fields import WebhookUrl
from integration.webhooks import operational
from integration.webhooks.subscriptions import EVENT_NAMES

SUBSCRIBABLE = (*EVENT_NAMES, *operational.NAMES)


class SubscriptionSchema(Schema):
    """`POST /v1/webhooks`: the URL, and which events and surfaces it wants."""

    url = WebhookUrl(required=True)
    events = fields.List(
        fields.String(validate=validate.OneOf(SUBSCRIBABLE)), validate=validate.Length(min=1, max=len(SUBSCRIBABLE))
    )
    surfaces = fields.List(fields.String(validate=validate.OneOf(list(SURFACES))), validate=validate.Length(max=50))
    description = fields.String(validate=validate.Length(max=500))


class SubscriptionUpdateSchema(SubscriptionSchema):
    """`PATCH /v1/webhooks/{id}`: any of the fields, and `enabled`."""

    url = WebhookUrl()
    enabled = fields.Boolean()


class RecoverSchema(Schema):
    """`POST /v1/webhooks/{id}/recover`: from when failed and dead deliveries are sent again."""

    since = fields.AwareDateTime(format="iso", required=True)
