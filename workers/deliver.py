"""The courier: one loop per worker process that turns job events into signed webhooks.

Dispatch: it reads `pr:events` as a Redis consumer group and fans each event out to
deliveries (the job's `webhook_url`, and every subscription of the job's key that wants
the event); entries are acknowledged only once their deliveries exist, and entries a
dead worker read are claimed back (XAUTOCLAIM). Send: it leases due deliveries and posts
them from a thread pool, signed per the Standard Webhooks spec, at most a few at a time
per endpoint so a slow receiver cannot hold the others up. Only 2xx is success;
redirects are not followed; 410 disables the subscription; Retry-After (RFC 9110) is
honoured; other failures are retried on `WEBHOOK_RETRY_SCHEDULE` with ±20% jitter, then
dead-lettered, from where they can be redelivered.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import redis

from integration.jobs.events import Event, EventReader
from integration.redis.budget import CallBudget
from integration.redis.connection import redis_problem
from integration.resources import Resources
from integration.webhooks import attempts, operational, outbound
from integration.webhooks.deliveries import Delivery, delivery_id
from integration.webhooks.subscriptions import Subscription

log = logging.getLogger(__name__)

GROUP = "podrelay-deliver"
DISPATCH_BATCH = 200
RECLAIM_EVERY = 5.0  # seconds between looks for events a dead worker left unacknowledged
SUBSCRIPTION_FRESH = 1.0  # seconds a subscription read is reused by the sender
HELD_PER_SLOT = 2  # deliveries held per endpoint slot; held ones wait at most this many sends, within their lease


class Courier:
    """Fans events out to deliveries and sends them."""

    def __init__(self, resources: Resources, stop: threading.Event | None = None):
        self.res = resources
        self.settings = resources.settings
        self.stop = stop or threading.Event()
        self.http = outbound.session(self.settings.webhook_allow_private, pool_size=self.settings.webhook_concurrency)
        self.capacity = self.settings.webhook_concurrency
        self.pool = ThreadPoolExecutor(self.capacity, thread_name_prefix="deliver")
        self.events = EventReader(resources.redis, GROUP, f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._by_target: Counter = Counter()
        self._by_key: Counter = Counter()  # deliveries in flight per API key
        self.rate = CallBudget(resources.redis, "deliver", self.settings.webhook_rate_per_key * 10)
        # Deliveries leased while their endpoint had its fill in flight: sent the moment one
        # of its sends ends (a fixed push-back in the due set cost up to 0.2 s a time).
        self._held: dict[str, deque[Delivery]] = {}
        self._last_reclaim = 0.0
        self._reads: dict[tuple, tuple[Any, float]] = {}  # see _fresh

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        """Loop until stopped: send what is due, then fan out new events (errors logged, loop goes on)."""
        grouped = False
        while not self.stop.is_set():
            try:
                if not grouped:  # here, not before the loop: Redis may be away when the worker starts
                    self.events.ensure_group()
                    grouped = True
                sent = self.send_due()
                self.dispatch(block_ms=self._block_ms(sent))
            except redis.exceptions.ConnectionError as error:  # Redis away, or at its limit: one line
                log.error("courier round failed: %s; retrying", redis_problem(error) or error)
                self.stop.wait(1.0)
            except Exception:
                log.exception("courier round failed; retrying")
                self.stop.wait(1.0)
        self.pool.shutdown(wait=True)

    def _block_ms(self, sent: int) -> int | None:
        """How long to wait for new events: not at all while there is sending to do."""
        if sent:
            return None
        with self._lock:
            full = self._in_flight >= self.capacity
        if full:
            time.sleep(0.01)
            return None
        due = self.res.deliveries.due.next_due()
        if due is None:
            return 1000
        return int(min(1000, max(1, (due - time.time()) * 1000)))

    # -- dispatch: events -> deliveries ------------------------------------------------

    def dispatch(self, block_ms: int | None = None) -> int:
        """Turn new (and abandoned) events into deliveries; returns how many events were read."""
        now = time.time()
        reclaim_idle_ms = None
        if now - self._last_reclaim > RECLAIM_EVERY:
            self._last_reclaim = now
            reclaim_idle_ms = int(self.settings.lease_seconds * 1000)
        entries = self.events.read(DISPATCH_BATCH, block_ms, reclaim_idle_ms)
        if not entries:
            return 0
        subscriptions: dict[str, list[Subscription]] = {}
        deliveries: list[Delivery] = []
        for _, event in entries:
            if event is not None:  # a claimed entry may have been deleted meanwhile
                deliveries += self._fan_out(event, subscriptions)
        self.res.deliveries.create_many(deliveries)
        self.events.done([entry_id for entry_id, _ in entries])
        return len(entries)

    def _fan_out(self, event: Event, cache: dict[str, list[Subscription]]) -> list[Delivery]:
        targets: list[tuple[str, str]] = []
        if event.only:
            sub = self.res.subscriptions.get(event.only)
            if sub:
                targets.append((sub.id, sub.url))
        else:
            if event.webhook_url:
                targets.append(("", event.webhook_url))
            if event.key_id not in cache:
                cache[event.key_id] = self.res.subscriptions.for_key(event.key_id)
            targets += [(s.id, s.url) for s in cache[event.key_id] if s.wants(event.type, event.surface)]
        now = time.time()
        return [
            Delivery(
                id=delivery_id(event.id, sub_id or url),
                event_id=event.id,
                event_type=event.type,
                key_id=event.key_id,
                url=url,
                body=event.body,
                subscription_id=sub_id,
                created=now,
                job_id=event.job_id,
                request_id=event.request_id,
            )
            for sub_id, url in targets
        ]

    # -- send --------------------------------------------------------------------------

    def send_due(self) -> int:
        """Lease due deliveries and start sending them, within the bounds per endpoint, per key
        in flight, and per key per second; how many were leased."""
        with self._lock:
            free = self.capacity - self._in_flight
        now = time.time()
        ids = self.res.deliveries.due.claim_due(now, free, self.settings.lease_seconds)
        per_target = self.settings.webhook_concurrency_per_endpoint
        per_key = self.settings.webhook_concurrency_per_key
        pending = []
        for delivery_id_, delivery in zip(ids, self.res.deliveries.get_many(ids), strict=True):
            if delivery is None or delivery.status != "pending":
                self.res.deliveries.due.remove(delivery_id_)
            else:
                pending.append(delivery)
        for delivery in self._within_rate(pending, now):
            with self._lock:
                target = delivery.target
                if self._by_key[delivery.key_id] < per_key and self._by_target[target] < per_target:
                    self._in_flight += 1
                    self._by_target[target] += 1
                    self._by_key[delivery.key_id] += 1
                    action = "send"
                elif self._by_target[target] and len(self._held.setdefault(target, deque())) < per_target * HELD_PER_SLOT:
                    self._held[target].append(delivery)  # takes over one of its endpoint's slots (the same key's)
                    action = "held"
                else:  # the endpoint or the key has its fill in flight: back in line, no key takes every slot
                    action = "later"
            if action == "send":
                self.pool.submit(self._send_and_release, delivery)
            elif action == "later":
                self.res.deliveries.due.schedule(delivery.id, now + 0.2)
        return len(ids)

    def _within_rate(self, deliveries: list[Delivery], now: float) -> list[Delivery]:
        """The deliveries each key's rate allows this second (`WEBHOOK_RATE_PER_KEY`, across
        processes); the others wait for the seconds after, so podrelay cannot flood a third party."""
        by_key: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            by_key.setdefault(delivery.key_id, []).append(delivery)
        allowed = []
        for key_id, group in by_key.items():
            granted = self.rate.take(key_id, len(group), now)
            allowed += group[:granted]
            later = {d.id: int(now) + 1 + n // self.rate.per_second + random.uniform(0, 1) for n, d in enumerate(group[granted:])}
            self.res.deliveries.due.schedule_many(later)
        return allowed

    def _send_and_release(self, delivery: Delivery) -> None:
        while delivery is not None:
            try:
                self.send(delivery)
            except Exception:  # Redis blinked: the lease lapses and the delivery is sent again
                log.exception("delivery %s: send failed", delivery.id)
            delivery = self._next_for(delivery.target, delivery.key_id)

    def _next_for(self, target: str, key_id: str) -> Delivery | None:
        """A held delivery for this endpoint (the same key's: targets are per key), which takes
        over the slot; else the slot is freed."""
        with self._lock:
            held = self._held.get(target)
            if held:
                return held.popleft()
            self._held.pop(target, None)
            self._in_flight -= 1
            self._by_target[target] -= 1
            if self._by_target[target] <= 0:
                del self._by_target[target]
            self._by_key[key_id] -= 1
            if self._by_key[key_id] <= 0:
                self._by_key.pop(key_id, None)
            return None

    def _fresh(self, key: tuple, now: float, read: Callable[[], Any]) -> Any:
        """What `read()` answers for `key` (a subscription, a key's signing secrets), read at
        most once a second per process: a Redis round trip less per delivery. A change
        (disabled, deleted, rotated) applies within a second; a rotated-out secret stays
        valid for the rotation window anyway."""
        cached = self._reads.get(key)
        if cached is not None and now - cached[1] < SUBSCRIPTION_FRESH:
            return cached[0]
        value = read()
        if len(self._reads) > 10_000:
            self._reads.clear()
        self._reads[key] = (value, now)
        return value

    def send(self, delivery: Delivery) -> None:
        """One attempt: sign, post, log, and decide what comes next."""
        now = time.time()
        sub_id = delivery.subscription_id
        sub = self._fresh(("subscription", sub_id), now, lambda: self.res.subscriptions.get(sub_id)) if sub_id else None
        if delivery.subscription_id and (sub is None or not sub.enabled):
            reason = "subscription deleted" if sub is None else f"subscription disabled: {sub.disabled_reason}"
            self.res.deliveries.record(delivery, {"at": attempts.iso(now), "error": reason}, "dead", None)
            return
        if sub:
            secret_list = sub.live_secrets(now)
        else:
            key_id = delivery.key_id
            secret_list = self._fresh(("signing", key_id), now, lambda: self.res.subscriptions.signing_secrets(key_id, now))
        attempt, retry_after = attempts.post(self.http, delivery, secret_list, self.settings.webhook_timeout, now)
        ids = {"request_id": delivery.request_id, "job_id": delivery.job_id, "delivery_id": delivery.id}
        outcome = attempt["status_code"] or attempt["error"]
        log.info("delivery of %s to %s, attempt %d: %s in %.0f ms", delivery.event_type, urlsplit(delivery.url).hostname,
                 delivery.attempts + 1, outcome, attempt["latency_ms"], extra=ids)  # fmt: skip
        self._conclude(delivery, sub, attempt, retry_after, now)

    def _conclude(
        self, delivery: Delivery, sub: Subscription | None, attempt: dict, retry_after: float | None, now: float
    ) -> None:
        code = attempt["status_code"]
        deliveries, subscriptions = self.res.deliveries, self.res.subscriptions
        if code is not None and 200 <= code < 300:
            deliveries.record(delivery, attempt, "delivered", None)
            if sub and (sub.failing_since or now - sub.last_success > 60):  # a write per state change, not per delivery
                subscriptions.record_success(sub.id, now)
            return
        if code == 410:
            deliveries.record(delivery, attempt, "failed", None)
            if sub:
                reason = f"The receiver answered 410 Gone at {attempts.iso(now)}"
                subscriptions.disable(sub.id, reason)
                operational.disabled(self.res.redis, sub, reason)
                log.warning("subscription %s disabled: receiver answered 410", sub.id)
            return
        schedule = self.settings.webhook_retry_schedule
        attempt_number = delivery.attempts + 1
        if attempt_number >= len(schedule):
            deliveries.record(delivery, attempt, "dead", None)
            operational.exhausted(self.res.redis, delivery, attempt)
        else:
            delay = schedule[attempt_number] * random.uniform(0.8, 1.2)
            if retry_after is not None:
                delay = max(delay, min(retry_after, 24 * 3600))
            deliveries.record(delivery, attempt, "pending", now + delay)
        if sub:
            since = subscriptions.record_failure(sub.id, now)
            if now - since > self.settings.webhook_disable_after and sub.enabled:
                reason = f"No successful delivery since {attempts.iso(since)}"
                subscriptions.disable(sub.id, reason)
                operational.disabled(self.res.redis, sub, reason)
                log.warning("subscription %s disabled: failing since %s", sub.id, attempts.iso(since))
