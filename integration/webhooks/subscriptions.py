"""Webhook subscriptions (endpoints registered per API key) and each key's signing secret.

Both hold a secret that can be rotated: the previous secret keeps signing beside the
new one until `WEBHOOK_ROTATION_WINDOW` has passed, so receivers can switch over.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import redis

from integration.errors import ApiError, not_found
from integration.jobs.events import ASKABLE_EVENT_NAMES, JOB_EVENT_NAMES, TEST_EVENT, Event, event_body, publish
from integration.webhooks.signing import new_secret

SUB = "pr:sub:{}"
KEY_SUBS = "pr:subs:{}"  # per API key: its subscriptions' ids
KEY_SIGNING = "pr:signing:{}"  # per API key: the secret that signs per-request webhook_url deliveries
EVENT_NAMES = ASKABLE_EVENT_NAMES  # what a subscription can ask for
OWNER_DISABLED = "Disabled by its owner"
DEFAULT_EVENTS = JOB_EVENT_NAMES  # what it gets when it names none: every status change, not progress


@dataclass(frozen=True)
class Subscription:
    """An endpoint that receives some events of one API key's jobs."""

    id: str
    key_id: str
    url: str
    secret: str
    events: tuple[str, ...] = DEFAULT_EVENTS
    surfaces: tuple[str, ...] = ()  # empty: every surface
    description: str = ""
    created: float = 0.0
    disabled_reason: str = ""
    previous_secret: str = ""
    previous_expires: float = 0.0
    failing_since: float = 0.0
    last_success: float = 0.0

    @property
    def enabled(self) -> bool:
        """Deliveries go out (not disabled by its owner, a 410, or long failure)."""
        return not self.disabled_reason

    def live_secrets(self, now: float) -> list[str]:
        """The secrets that sign its deliveries now (two during a rotation window)."""
        return live_secrets(
            {"secret": self.secret, "previous_secret": self.previous_secret, "previous_expires": self.previous_expires}, now
        )

    def wants(self, event_type: str, surface: str) -> bool:
        """Whether an event of this type, for a job of this surface, goes to it."""
        # Events without a surface (operational ones) pass a surface filter.
        return self.enabled and event_type in self.events and (not self.surfaces or not surface or surface in self.surfaces)

    def to_api(self, with_secret: bool = False) -> dict:
        """The subscription as the API shows it (its secret only when created or rotated)."""
        body = {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "events": list(self.events),
            "surfaces": list(self.surfaces),
            "description": self.description,
            "status": "enabled" if self.enabled else "disabled",
            "disabled_reason": self.disabled_reason or None,
            "created": int(self.created),
            "last_success": int(self.last_success) or None,
            "failing_since": int(self.failing_since) or None,
        }
        if with_secret:
            body["secret"] = self.secret
        return body

    @classmethod
    def from_redis(cls, data: dict[bytes, bytes]) -> Subscription:
        """The subscription from its hash, as `HGETALL` answers it."""
        v = {k.decode(): x.decode() for k, x in data.items()}
        return cls(
            id=v["id"],
            key_id=v["key_id"],
            url=v["url"],
            secret=v["secret"],
            events=tuple(json.loads(v.get("events", "[]"))),
            surfaces=tuple(json.loads(v.get("surfaces", "[]"))),
            description=v.get("description", ""),
            created=float(v.get("created", 0)),
            disabled_reason=v.get("disabled_reason", ""),
            previous_secret=v.get("previous_secret", ""),
            previous_expires=float(v.get("previous_expires") or 0),
            failing_since=float(v.get("failing_since") or 0),
            last_success=float(v.get("last_success") or 0),
        )


def live_secrets(record: dict, now: float) -> list[str]:
    """The secrets that sign now: the current one, and the previous one inside its window."""
    out = [record["secret"]]
    if record.get("previous_secret") and float(record.get("previous_expires") or 0) > now:
        out.append(record["previous_secret"])
    return out


# Writes to a subscription that may have just been deleted must not bring back a
# partial record. KEYS[1] the record. ARGV field/value pairs. Answers HSET's count, 0 if gone.
_UPDATE_EXISTING = """
local record = KEYS[1]
if redis.call('EXISTS', record) == 0 then return 0 end
return redis.call('HSET', record, unpack(ARGV))
"""
# A failed delivery: failing since now unless already failing. KEYS[1] the record.
# ARGV[1] now. Answers since when it has been failing ('0': gone).
_RECORD_FAILURE = """
local record, now = KEYS[1], ARGV[1]
if redis.call('EXISTS', record) == 0 then return '0' end
local since = tonumber(redis.call('HGET', record, 'failing_since') or '0') or 0
if since == 0 then
  redis.call('HSET', record, 'failing_since', now)
  return now
end
return tostring(since)
"""


# A new subscription within its key's cap and the only one for its URL. KEYS[1] the key's
# subscriptions, KEYS[2] the new record. ARGV[1] the most a key may have, ARGV[2] its URL,
# ARGV[3] its id, ARGV[4] the records' key prefix, ARGV[5...] the record's field/value pairs.
# Answers {1} when stored, {-1, how many} over the cap, {-2, id} when that id has the URL.
_CREATE = """
local subs, record, most, url, id, prefix = KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local existing = redis.call('SMEMBERS', subs)
if #existing >= most then return {-1, #existing} end
for _, other in ipairs(existing) do
  if redis.call('HGET', prefix .. other, 'url') == url then return {-2, other} end
end
redis.call('HSET', record, unpack(ARGV, 5))
redis.call('SADD', subs, id)
return {1}
"""


class SubscriptionStore:
    """Subscriptions and signing secrets in Redis."""

    def __init__(self, conn: redis.Redis, rotation_window: float):
        self.conn = conn
        self.rotation_window = rotation_window
        self._create = conn.register_script(_CREATE)
        self._update_existing = conn.register_script(_UPDATE_EXISTING)
        self._record_failure = conn.register_script(_RECORD_FAILURE)

    def _write(self, sub_id: str, values: dict) -> None:
        self._update_existing(keys=[SUB.format(sub_id)], args=[item for pair in values.items() for item in pair])

    # -- subscriptions ---------------------------------------------------------------

    def create(self, key_id: str, url: str, events, surfaces, description: str, most: int = 20) -> Subscription:
        """A new subscription of `key_id`, with a new secret: at most `most` per key, one per URL
        (403 `subscription_limit_reached`, 409 `duplicate_subscription`)."""
        sub = Subscription(
            id="we_" + secrets.token_hex(12),
            key_id=key_id,
            url=url,
            secret=new_secret(),
            events=tuple(events or DEFAULT_EVENTS),
            surfaces=tuple(surfaces or ()),
            description=description or "",
            created=time.time(),
        )
        fields = [item for pair in self._fields(sub).items() for item in pair]
        answer = self._create(
            keys=[KEY_SUBS.format(key_id), SUB.format(sub.id)], args=[most, url, sub.id, SUB.format(""), *fields]
        )
        if answer[0] == -1:
            message = f"A key may have {most} webhook subscriptions (WEBHOOK_MAX_SUBSCRIPTIONS); delete one first"
            raise ApiError(403, "subscription_limit_reached", message)
        if answer[0] == -2:
            existing = answer[1].decode()
            raise ApiError(409, "duplicate_subscription", f"{existing} already sends to this URL; change it instead", param="url")
        return sub

    def url_taken(self, key_id: str, url: str, other_than: str) -> bool:
        """Whether another of the key's subscriptions sends to `url`."""
        return any(s.url == url and s.id != other_than for s in self.for_key(key_id))

    @staticmethod
    def _fields(sub: Subscription) -> dict:
        return {
            "id": sub.id,
            "key_id": sub.key_id,
            "url": sub.url,
            "secret": sub.secret,
            "events": json.dumps(list(sub.events)),
            "surfaces": json.dumps(list(sub.surfaces)),
            "description": sub.description,
            "created": sub.created,
            "disabled_reason": sub.disabled_reason,
        }

    def get(self, sub_id: str) -> Subscription | None:
        """The subscription, or None."""
        data = self.conn.hgetall(SUB.format(sub_id)) if len(sub_id) <= 64 else None
        return Subscription.from_redis(data) if data and b"id" in data else None

    def owned(self, sub_id: str, key_id: str) -> Subscription:
        """The subscription of `key_id`, or 404 (also for another key's)."""
        sub = self.get(sub_id)
        if sub is None or sub.key_id != key_id:
            raise not_found("Webhook endpoint")
        return sub

    def for_key(self, key_id: str) -> list[Subscription]:
        """The key's subscriptions, oldest first."""
        ids = [i.decode() for i in self.conn.smembers(KEY_SUBS.format(key_id))]
        pipe = self.conn.pipeline(transaction=False)
        for sub_id in ids:
            pipe.hgetall(SUB.format(sub_id))
        return sorted((Subscription.from_redis(d) for d in pipe.execute() if d and b"id" in d), key=lambda s: s.created)

    def update(self, sub_id: str, **fields) -> None:
        """Change fields of a subscription that still exists."""
        values = {k: json.dumps(list(v)) if isinstance(v, (list, tuple)) else v for k, v in fields.items()}
        self._write(sub_id, values)

    def delete(self, sub: Subscription) -> None:
        """Remove a subscription (its deliveries then end `dead`)."""
        pipe = self.conn.pipeline()
        pipe.delete(SUB.format(sub.id))
        pipe.srem(KEY_SUBS.format(sub.key_id), sub.id)
        pipe.execute()

    def rotate(self, sub: Subscription) -> Subscription:
        """A new secret; the old one keeps signing for the rotation window."""
        self._rotate(SUB.format(sub.id), sub.secret)
        return self.get(sub.id)

    def disable(self, sub_id: str, reason: str) -> None:
        """Stop deliveries to it, saying why."""
        self._write(sub_id, {"disabled_reason": reason})

    @staticmethod
    def owner_changes(enabled: bool) -> dict:
        """The fields its owner's enable (failing forgotten) or disable writes."""
        return {"disabled_reason": "", "failing_since": 0} if enabled else {"disabled_reason": OWNER_DISABLED}

    def record_success(self, sub_id: str, now: float) -> None:
        """Note a delivered attempt: not failing any more."""
        self._write(sub_id, {"last_success": now, "failing_since": 0})

    def record_failure(self, sub_id: str, now: float) -> float:
        """Note a failed delivery; returns since when the subscription has been failing."""
        return float(self._record_failure(keys=[SUB.format(sub_id)], args=[now]))

    # -- per-key signing secret (for per-request webhook_url) --------------------------

    def signing_secret(self, key_id: str) -> str:
        """The key's current signing secret, created on first use."""
        key = KEY_SIGNING.format(key_id)
        self.conn.hsetnx(key, "secret", new_secret())
        return self.conn.hget(key, "secret").decode()

    def signing_secrets(self, key_id: str, now: float) -> list[str]:
        """The key's secrets that sign per-request deliveries now (two during a rotation)."""
        self.signing_secret(key_id)
        data = {k.decode(): v.decode() for k, v in self.conn.hgetall(KEY_SIGNING.format(key_id)).items()}
        return live_secrets(data, now)

    def rotate_signing_secret(self, key_id: str) -> str:
        """A new signing secret for the key; the old one keeps signing for the rotation window."""
        self._rotate(KEY_SIGNING.format(key_id), self.signing_secret(key_id))
        return self.signing_secret(key_id)

    def _rotate(self, key: str, current: str) -> None:
        self.conn.hset(
            key,
            mapping={"secret": new_secret(), "previous_secret": current, "previous_expires": time.time() + self.rotation_window},
        )

    def send_test(self, sub: Subscription) -> Event:
        """Queue a `webhook.test` event for this subscription alone."""
        data = {"webhook_id": sub.id, "message": "A test event from podrelay"}
        event = Event(
            id=f"msg_test{time.time_ns():x}", type=TEST_EVENT, key_id=sub.key_id, only=sub.id, body=event_body(TEST_EVENT, data)
        )
        publish(self.conn, event)
        return event
