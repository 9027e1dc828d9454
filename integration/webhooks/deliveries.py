"""Webhook deliveries: one per event and target, with every attempt logged.

A delivery's id is derived from its event and target, so fanning one event out twice
(after a dispatcher died mid-way) creates nothing new. Undelivered ones wait in the
leased set `pr:deliveries:due`; a worker that dies mid-send loses only its lease, and
the delivery is sent again with the same `webhook-id` (at-least-once).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

import redis

from integration.errors import not_found
from integration.metrics import Metrics
from integration.redis.leases import LeasedSet

DELIVERY = "pr:dlv:{}"
ATTEMPTS = "pr:dlv:{}:attempts"
DUE = "pr:deliveries:due"
KEY_DELIVERIES = "pr:keydlv:{}"  # per API key, by creation time
SUB_DELIVERIES = "pr:subdlv:{}"  # per subscription, by creation time
MAX_ATTEMPTS_KEPT = 50
STATUSES = ("pending", "delivered", "failed", "dead")
RECOVER_MAX = 10_000  # deliveries one recover sends again
OVERDUE_AFTER = 30.0  # a delivery due longer than this counts as backlog (/readyz, /metrics)

# Create unless it exists. KEYS[1] the record, KEYS[2] the due set, KEYS[3] the key's
# index, KEYS[4] the subscription's index ('' for none). ARGV[1] the id, ARGV[2] created
# (and due), ARGV[3...] field/value pairs. Answers 1 when created, 0 when it existed.
_CREATE = """
local record, due, key_index, sub_index = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, created = ARGV[1], ARGV[2]
if redis.call('EXISTS', record) == 1 then return 0 end
redis.call('HSET', record, unpack(ARGV, 3))
redis.call('ZADD', due, created, id)
redis.call('ZADD', key_index, created, id)
if sub_index ~= '' then redis.call('ZADD', sub_index, created, id) end
return 1
"""


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one URL."""

    id: str
    event_id: str
    event_type: str
    key_id: str
    url: str
    body: str
    subscription_id: str = ""  # empty: the job's own webhook_url, signed with the key's secret
    status: str = "pending"
    attempts: int = 0
    created: float = 0.0
    last_status_code: int = 0
    error: str = ""
    job_id: str = ""  # the job whose event this is (empty for test events)
    request_id: str = ""  # the request that accepted that job: follows it into the logs

    @property
    def target(self) -> str:
        """What concurrency is bounded by: the subscription, or the key's URL (one key's slow URL
        never takes another key's slots, even for the same URL)."""
        return self.subscription_id or f"{self.key_id}|{self.url}"

    def to_api(self, attempts: list[dict] | None = None) -> dict:
        """The delivery as the API shows it, with its attempts when given."""
        body = {
            "id": self.id,
            "object": "webhook_delivery",
            "event_id": self.event_id,
            "event_type": self.event_type,
            "webhook_id": self.subscription_id or None,
            "job_id": self.job_id or None,
            "url": self.url,
            "status": self.status,
            "attempt_count": self.attempts,
            "last_status_code": self.last_status_code or None,
            "error": self.error or None,
            "created": int(self.created),
        }
        if attempts is not None:
            body["attempts"] = attempts
        return body

    @classmethod
    def from_redis(cls, data: dict[bytes, bytes]) -> Delivery:
        """The delivery from its hash, as `HGETALL` answers it."""
        v = {k.decode(): x.decode() for k, x in data.items()}
        return cls(
            id=v["id"],
            event_id=v["event_id"],
            event_type=v["event_type"],
            key_id=v["key_id"],
            url=v["url"],
            body=v["body"],
            subscription_id=v.get("subscription_id", ""),
            status=v.get("status", "pending"),
            attempts=int(v.get("attempts") or 0),
            created=float(v.get("created") or 0),
            last_status_code=int(v.get("last_status_code") or 0),
            error=v.get("error", ""),
            job_id=v.get("job_id", ""),
            request_id=v.get("request_id", ""),
        )


def delivery_id(event_id: str, target: str) -> str:
    """The id of an event's delivery to a target: the same however often it is fanned out."""
    return "dlv_" + hashlib.sha256(f"{event_id}|{target}".encode()).hexdigest()[:24]


def count_due(pipe: redis.client.Pipeline, now: float) -> None:
    """Queue on `pipe` the counts of undelivered deliveries and of those overdue (two answers)."""
    pipe.zcard(DUE)
    pipe.zcount(DUE, "-inf", now - OVERDUE_AFTER)


class DeliveryStore:
    """Deliveries, their attempts, and the due set, in Redis."""

    def __init__(self, conn: redis.Redis, ttl: int, metrics: Metrics | None = None):
        self.conn = conn
        self.ttl = ttl
        self.metrics = metrics
        self.due = LeasedSet(conn, DUE)
        self._create = conn.register_script(_CREATE)

    def create(self, delivery: Delivery) -> bool:
        """Store and schedule a delivery at once; False when it already existed."""
        return self.create_many([delivery]) == 1

    def create_many(self, deliveries: list[Delivery]) -> int:
        """Store and schedule deliveries in one round trip; how many were new."""
        pipe = self.conn.pipeline(transaction=False)
        for delivery in deliveries:
            fields = {k: v for k, v in delivery.__dict__.items() if v not in ("", None)}
            args = [delivery.id, delivery.created, *[x for pair in fields.items() for x in pair]]
            sub_index = SUB_DELIVERIES.format(delivery.subscription_id) if delivery.subscription_id else ""
            keys = [DELIVERY.format(delivery.id), DUE, KEY_DELIVERIES.format(delivery.key_id), sub_index]
            self._create(keys=keys, args=args, client=pipe)
        return sum(pipe.execute()) if deliveries else 0

    def get(self, delivery_id: str) -> Delivery | None:
        """The delivery, or None."""
        data = self.conn.hgetall(DELIVERY.format(delivery_id)) if len(delivery_id) <= 64 else None
        return Delivery.from_redis(data) if data else None

    def owned(self, delivery_id: str, key_id: str) -> Delivery:
        """The delivery of `key_id`, or 404 (also for another key's)."""
        delivery = self.get(delivery_id)
        if delivery is None or delivery.key_id != key_id:
            raise not_found("Delivery")
        return delivery

    def get_many(self, ids: list[str]) -> list[Delivery | None]:
        """The deliveries in one round trip, None where one is gone."""
        pipe = self.conn.pipeline(transaction=False)
        for delivery_id in ids:
            pipe.hgetall(DELIVERY.format(delivery_id))
        return [Delivery.from_redis(d) if d else None for d in pipe.execute()]

    def attempts(self, delivery_id: str) -> list[dict]:
        """The delivery's attempts, oldest first (the last 50)."""
        return [json.loads(a) for a in self.conn.lrange(ATTEMPTS.format(delivery_id), 0, -1)]

    def record(self, delivery: Delivery, attempt: dict, status: str, next_due: float | None) -> None:
        """Log an attempt and its outcome: pending again at `next_due`, or final."""
        pipe = self.conn.pipeline()
        pipe.rpush(ATTEMPTS.format(delivery.id), json.dumps(attempt, separators=(",", ":")))
        pipe.ltrim(ATTEMPTS.format(delivery.id), -MAX_ATTEMPTS_KEPT, -1)
        pipe.hset(
            DELIVERY.format(delivery.id),
            mapping={
                "status": status,
                "attempts": delivery.attempts + 1,
                "last_status_code": attempt.get("status_code") or 0,
                "error": attempt.get("error") or "",
            },
        )
        if next_due is None:
            pipe.zrem(DUE, delivery.id)
            pipe.expire(DELIVERY.format(delivery.id), self.ttl)
            pipe.expire(ATTEMPTS.format(delivery.id), self.ttl)
        else:
            pipe.zadd(DUE, {delivery.id: next_due})
        pipe.execute()
        if self.metrics is not None:
            self.metrics.inc("podrelay_webhook_deliveries_total", outcome="retry" if status == "pending" else status)

    def redeliver(self, delivery: Delivery) -> None:
        """Send again from the start of the retry schedule (the attempt log is kept)."""
        self._again([delivery])

    def _again(self, deliveries: list[Delivery]) -> None:
        now = time.time()
        pipe = self.conn.pipeline()
        for delivery in deliveries:
            pipe.hset(DELIVERY.format(delivery.id), mapping={"status": "pending", "attempts": 0, "error": ""})
            pipe.persist(DELIVERY.format(delivery.id))
            pipe.persist(ATTEMPTS.format(delivery.id))
            pipe.zadd(DUE, {delivery.id: now})
        pipe.execute()

    def recover(self, subscription_id: str, since: float, most: int = RECOVER_MAX) -> list[str]:
        """Send again every failed or dead delivery of a subscription created since `since`
        (Svix's "recover"); the ids sent again, oldest first."""
        ids = [i.decode() for i in self.conn.zrangebyscore(SUB_DELIVERIES.format(subscription_id), since, "+inf")]
        again = [d for d in self.get_many(ids) if d is not None and d.status in ("failed", "dead")][:most]
        self._again(again)
        return [delivery.id for delivery in again]

    def list(self, key_id: str, subscription_id: str | None, status: str | None, limit: int) -> list[Delivery]:
        """Newest first, for a key or one of its subscriptions, optionally by status."""
        index = SUB_DELIVERIES.format(subscription_id) if subscription_id else KEY_DELIVERIES.format(key_id)
        found: list[Delivery] = []
        start = 0
        while len(found) < limit and start < 10_000:
            ids = [i.decode() for i in self.conn.zrevrange(index, start, start + 199)]
            if not ids:
                break
            start += len(ids)
            for delivery in self.get_many(ids):
                if delivery and (status is None or delivery.status == status):
                    found.append(delivery)
        return found[:limit]
