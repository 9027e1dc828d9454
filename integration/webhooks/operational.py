"""Operational events: what a key's subscribers should hear about beside their jobs.

- `delivery.exhausted`: a delivery of one of the key's job events was dead-lettered (its
  last scheduled attempt failed). Not sent for operational events themselves, so a
  failing receiver cannot start a loop.
- `subscription.disabled`: one of the key's subscriptions was disabled (a `410 Gone`, or
  no success for `WEBHOOK_DISABLE_AFTER`). Its other subscriptions that ask hear of it.
- `endpoint.unhealthy` / `endpoint.recovered`, for admin keys only: an endpoint's circuit
  opened, or closed again (`integration/runpod/circuit.py`).

A subscription gets them only when it names them in `events`. They go through the same
stream, signing, retries and delivery log as job events (Svix's and Convoy's operational
webhooks).
"""

from __future__ import annotations

import uuid

import redis

from integration.jobs.events import Event, event_body, publish

EXHAUSTED, DISABLED = "delivery.exhausted", "subscription.disabled"
UNHEALTHY, RECOVERED = "endpoint.unhealthy", "endpoint.recovered"
KEY_EVENTS = (EXHAUSTED, DISABLED)
ADMIN_EVENTS = (UNHEALTHY, RECOVERED)
NAMES = (*KEY_EVENTS, *ADMIN_EVENTS)


def announce(conn: redis.Redis, key_id: str, event_type: str, data: dict) -> None:
    """Send an operational event to the key's subscriptions that ask for it."""
    publish(conn, Event(id="msg_" + uuid.uuid4().hex, type=event_type, key_id=key_id, body=event_body(event_type, data)))


def exhausted(conn: redis.Redis, delivery, attempt: dict) -> None:
    """A job event's delivery was dead-lettered."""
    if delivery.event_type in NAMES:
        return
    data = {
        "delivery_id": delivery.id, "event_id": delivery.event_id, "event_type": delivery.event_type,
        "subscription_id": delivery.subscription_id or None, "url": delivery.url, "job_id": delivery.job_id or None,
        "attempts": delivery.attempts + 1, "last_status_code": attempt.get("status_code"), "error": attempt.get("error") or None,
    }  # fmt: skip
    announce(conn, delivery.key_id, EXHAUSTED, data)


def disabled(conn: redis.Redis, sub, reason: str) -> None:
    """A subscription was disabled: its key's other subscriptions that ask hear of it."""
    announce(conn, sub.key_id, DISABLED, {"subscription_id": sub.id, "url": sub.url, "reason": reason})


def endpoint_changed(conn: redis.Redis, admin_key_ids: list[str], endpoint_id: str, after: str, detail: dict) -> None:
    """An endpoint's circuit opened or closed: every admin key hears of it."""
    event_type = UNHEALTHY if after == "open" else RECOVERED
    for key_id in admin_key_ids:
        announce(conn, key_id, event_type, {"endpoint_id": endpoint_id, "circuit": after, **detail})
