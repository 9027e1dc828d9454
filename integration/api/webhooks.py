"""The webhooks API: subscriptions, their secrets, test events, deliveries and redelivery.

Modelled on Svix and Stripe. Every object belongs to one API key; another key's
subscription or delivery is answered as if it did not exist (404).
"""

from __future__ import annotations

import time

from flask import Blueprint, g, jsonify, request

from integration.api.admission import admit
from integration.api.context import json_body, resources
from integration.errors import ApiError, validation_error
from integration.surfaces.fields import load
from integration.webhooks import operational
from integration.webhooks.deliveries import STATUSES
from integration.webhooks.outbound import check_target
from integration.webhooks.schemas import RecoverSchema, SubscriptionSchema, SubscriptionUpdateSchema
from integration.webhooks.subscriptions import Subscription

bp = Blueprint("webhooks", __name__)
bp.before_request(admit)


_create_schema, _update_schema, _recover_schema = SubscriptionSchema(), SubscriptionUpdateSchema(), RecoverSchema()


def _res():
    return resources()


def own_subscription(sub_id: str) -> Subscription:
    """The caller's subscription, or 404."""
    return _res().subscriptions.owned(sub_id, g.key_id)


@bp.post("/webhooks")
def create_subscription():
    """`POST /v1/webhooks`: 201 with the subscription and its secret."""
    data = load(_create_schema, json_body())
    _admin_events_only_for_admins(data)
    check_target(data["url"], _res().settings.webhook_allow_private, "url")
    sub = _res().subscriptions.create(
        g.key_id, data["url"], data.get("events"), data.get("surfaces"), data.get("description", ""),
        most=_res().settings.webhook_max_subscriptions,
    )  # fmt: skip
    response = jsonify(sub.to_api(with_secret=True))
    response.status_code = 201
    response.headers["Location"] = f"/v1/webhooks/{sub.id}"
    return response


def _admin_events_only_for_admins(data: dict) -> None:
    if not g.admin and set(data.get("events") or ()) & set(operational.ADMIN_EVENTS):
        raise validation_error(
            "Invalid value for 'events': endpoint.unhealthy and endpoint.recovered are for admin keys", "events"
        )


@bp.get("/webhooks")
def list_subscriptions():
    """`GET /v1/webhooks`."""
    return jsonify({"object": "list", "data": [s.to_api() for s in _res().subscriptions.for_key(g.key_id)]})


@bp.get("/webhooks/<sub_id>")
def get_subscription(sub_id: str):
    """`GET /v1/webhooks/{id}`."""
    return jsonify(own_subscription(sub_id).to_api())


@bp.patch("/webhooks/<sub_id>")
def update_subscription(sub_id: str):
    """`PATCH /v1/webhooks/{id}`: change fields, enable or disable."""
    sub = own_subscription(sub_id)
    data = load(_update_schema, json_body())
    _admin_events_only_for_admins(data)
    if "url" in data:
        check_target(data["url"], _res().settings.webhook_allow_private, "url")
        if _res().subscriptions.url_taken(g.key_id, data["url"], other_than=sub.id):
            raise ApiError(409, "duplicate_subscription", "Another subscription already sends to this URL", param="url")
    changes = {k: v for k, v in data.items() if k != "enabled"}
    if "enabled" in data:
        changes.update(_res().subscriptions.owner_changes(data["enabled"]))
    if changes:
        _res().subscriptions.update(sub.id, **changes)
    return jsonify(own_subscription(sub.id).to_api())


@bp.delete("/webhooks/<sub_id>")
def delete_subscription(sub_id: str):
    """`DELETE /v1/webhooks/{id}`."""
    sub = own_subscription(sub_id)
    _res().subscriptions.delete(sub)
    return jsonify({"id": sub.id, "object": "webhook_endpoint", "deleted": True})


@bp.post("/webhooks/<sub_id>/rotate-secret")
def rotate_secret(sub_id: str):
    """`POST /v1/webhooks/{id}/rotate-secret`: a new secret; the old one signs for the rotation window."""
    sub = _res().subscriptions.rotate(own_subscription(sub_id))
    return jsonify({**sub.to_api(with_secret=True), "previous_secret_expires": int(sub.previous_expires)})


@bp.post("/webhooks/<sub_id>/test")
def send_test_event(sub_id: str):
    """`POST /v1/webhooks/{id}/test`: a `webhook.test` event to this subscription."""
    sub = own_subscription(sub_id)
    event = _res().subscriptions.send_test(sub)
    response = jsonify({"object": "event", "id": event.id, "type": event.type, "webhook_id": sub.id})
    response.status_code = 202
    return response


def _deliveries_page(subscription_id: str | None):
    status = request.args.get("status")
    if status and status not in STATUSES:
        raise validation_error(f"Invalid value for 'status': must be one of {', '.join(STATUSES)}.", "status")
    try:
        limit = int(request.args.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise validation_error("Invalid value for 'limit': must be an integer from 1 to 100.", "limit")
    store = _res().deliveries
    found = store.list(g.key_id, subscription_id, status, limit)
    return jsonify({"object": "list", "data": [d.to_api(store.attempts(d.id)) for d in found]})


@bp.get("/webhooks/<sub_id>/deliveries")
def subscription_deliveries(sub_id: str):
    """`GET /v1/webhooks/{id}/deliveries`."""
    return _deliveries_page(own_subscription(sub_id).id)


@bp.get("/webhooks/deliveries")
def key_deliveries():
    """Every delivery of the key (subscriptions and per-request webhook_url); `?status=dead` lists the dead letters."""
    return _deliveries_page(None)


@bp.get("/webhooks/deliveries/<delivery_id>")
def get_delivery(delivery_id: str):
    """`GET /v1/webhooks/deliveries/{id}`: a delivery with its attempts."""
    delivery = _res().deliveries.owned(delivery_id, g.key_id)
    return jsonify(delivery.to_api(_res().deliveries.attempts(delivery.id)))


@bp.post("/webhooks/deliveries/<delivery_id>/redeliver")
def redeliver(delivery_id: str):
    """`POST /v1/webhooks/deliveries/{id}/redeliver`: send again from the start of the schedule."""
    delivery = _res().deliveries.owned(delivery_id, g.key_id)
    _res().deliveries.redeliver(delivery)
    response = jsonify(_res().deliveries.get(delivery.id).to_api())
    response.status_code = 202
    return response


@bp.post("/webhooks/<sub_id>/recover")
def recover(sub_id: str):
    """`POST /v1/webhooks/{id}/recover {"since": ISO 8601}`: send again every failed or dead
    delivery of the subscription since then (Svix's recover)."""
    subscription = own_subscription(sub_id)
    since = load(_recover_schema, json_body())["since"].timestamp()
    recovered = _res().deliveries.recover(subscription.id, since)
    response = jsonify({"object": "recovery", "subscription_id": subscription.id, "recovered": len(recovered),
                        "delivery_ids": recovered[:100]})  # fmt: skip
    response.status_code = 202
    return response


@bp.get("/webhooks/signing-secret")
def signing_secret():
    """The secret that signs deliveries to per-request `webhook_url`s of this key."""
    return jsonify({"secret": _res().subscriptions.signing_secret(g.key_id)})


@bp.post("/webhooks/signing-secret/rotate")
def rotate_signing_secret():
    """`POST /v1/webhooks/signing-secret/rotate`: a new secret for per-request deliveries."""
    secret = _res().subscriptions.rotate_signing_secret(g.key_id)
    window = _res().settings.webhook_rotation_window
    return jsonify({"secret": secret, "previous_secret_expires": int(time.time() + window)})
