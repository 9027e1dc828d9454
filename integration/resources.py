"""The resources one process needs, created once: Redis, the job store, RunPod, tokens, queue.

The web app keeps one in `app.extensions["podrelay"]`; a worker process builds its own
from the same settings. Nothing here is a module-level global.
"""

from __future__ import annotations

from functools import cached_property

import redis
from rq import Queue

from integration.callbacks import CallbackTokens
from integration.config import Settings
from integration.deliveries import DeliveryStore
from integration.downloads import DownloadLinks
from integration.group_commit import GroupCommit
from integration.idempotency import IdempotencyStore
from integration.jobs import JobStore
from integration.metrics import Metrics
from integration.prices import PriceTable
from integration.ratelimit import RateLimiter
from integration.redis_connection import connect, resolve_url
from integration.runpod import RunPodClient
from integration.subscriptions import SubscriptionStore
from integration.waiting import JobWaiter

QUEUE_NAME = "podrelay"


class Resources:
    """Lazily built, process-wide handles on everything outside podrelay."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def redis_url(self) -> str:
        return resolve_url(self.settings.redis_url, self.settings.data_dir)

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.redis_url)

    @cached_property
    def links(self) -> DownloadLinks:
        return DownloadLinks(self.settings.secret_key, self.settings.result_ttl, self.settings.public_base_url)

    @cached_property
    def metrics(self) -> Metrics:
        return Metrics(self.redis)

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(
            self.redis, self.settings.result_ttl, event_data=self.links.linked, metrics=self.metrics, commits=self.commits
        )

    @cached_property
    def commits(self) -> GroupCommit:
        return GroupCommit(self.redis)

    @cached_property
    def subscriptions(self) -> SubscriptionStore:
        return SubscriptionStore(self.redis, self.settings.webhook_rotation_window)

    @cached_property
    def deliveries(self) -> DeliveryStore:
        return DeliveryStore(self.redis, self.settings.result_ttl, metrics=self.metrics)

    @cached_property
    def prices(self) -> PriceTable:
        return PriceTable(self.settings.price_table)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        return RateLimiter(self.redis, self.commits)

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        return IdempotencyStore(self.redis, self.settings.idempotency_ttl)

    @cached_property
    def waiter(self) -> JobWaiter:
        return JobWaiter(self.redis)

    @cached_property
    def queue(self) -> Queue:
        return Queue(QUEUE_NAME, connection=self.redis)

    @cached_property
    def tokens(self) -> CallbackTokens:
        return CallbackTokens(self.settings.secret_key)

    @cached_property
    def runpod(self) -> RunPodClient:
        return RunPodClient(
            self.settings.runpod_api_key,
            self.settings.runpod_api_base,
            timeout=self.settings.runpod_timeout,
            pool_size=max(8, self.settings.tracker_concurrency),
            on_call=self.count_runpod_call,
        )

    def count_runpod_call(self, operation: str, status: str) -> None:
        """A RunPod call and how it ended (HTTP status or error), for `/metrics`."""
        self.metrics.inc("podrelay_runpod_calls_total", operation=operation, status=status)
