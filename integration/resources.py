"""The resources one process needs, created once: Redis, the stores, RunPod, tokens, queue.

This is the composition root: it builds each domain's objects from the settings and
hands them to whoever asks (the web app keeps one in `app.extensions`, reached through
`of(app)` or `integration.api.context.resources()`; a worker process builds its own and
passes it on). Nothing here is a module-level global.
"""

from __future__ import annotations

import logging
from functools import cached_property

import redis
from rq import Queue

from integration.accounts.held import Holds
from integration.accounts.idempotency import IdempotencyStore
from integration.accounts.ratelimit import RateLimiter
from integration.config import Settings
from integration.files.downloads import DownloadLinks
from integration.files.inputs import FileLinks, Uploads
from integration.files.store import DirectoryStore, S3Store, open_store
from integration.jobs.store import JobStore
from integration.jobs.tasks import QUEUE_NAME
from integration.jobs.waiting import JobWaiter
from integration.mcp.process import McpProcess
from integration.metrics import Metrics
from integration.redis.budget import CallBudget
from integration.redis.connection import connect, resolve_url
from integration.redis.group_commit import GroupCommit
from integration.runpod.callbacks import CallbackTokens
from integration.runpod.circuit import Circuits
from integration.runpod.client import RunPodClient
from integration.surfaces.prices import PriceTable
from integration.webhooks.deliveries import DeliveryStore
from integration.webhooks.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)
EXTENSION = "podrelay"  # the key of a Flask app's resources in `app.extensions`


def of(app) -> Resources:
    """The resources of a Flask app made by `create_app`."""
    return app.extensions[EXTENSION]


class Resources:
    """Lazily built, process-wide handles on everything outside podrelay."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.redis_connections = settings.redis_web_connections  # a worker process sets its own before use

    @cached_property
    def redis_url(self) -> str:
        """`REDIS_URL`, or the embedded server's (started if needed)."""
        return resolve_url(self.settings.redis_address, self.settings.data_dir)

    @cached_property
    def redis(self) -> redis.Redis:
        """The process's Redis client: a pool of at most `redis_connections`, with timeouts."""
        settings = self.settings
        return connect(self.redis_url, False, settings.redis_tls_verify, settings.redis_tls_ca_file, self.redis_connections)

    @cached_property
    def links(self) -> DownloadLinks:
        """Signed download links for file results."""
        self.settings.require_secret()  # never sign with an empty secret
        return DownloadLinks(self.settings.secret_key, self.settings.result_ttl, self.settings.public_base_url)

    @cached_property
    def metrics(self) -> Metrics:
        """This process's counters, flushed to Redis."""
        return Metrics(self.redis)

    @cached_property
    def jobs(self) -> JobStore:
        """The job store; webhook bodies link large files instead of inlining them."""
        return JobStore(
            self.redis,
            self.settings.result_ttl,
            event_data=self.links.linked,
            metrics=self.metrics,
            commits=self.commits,
            files=self.files,
        )

    @cached_property
    def files(self) -> DirectoryStore | S3Store:
        """The blob store of uploads and file results (FILES_URL)."""
        store = open_store(self.settings.files_url, self.settings.data_dir)
        if self.settings.dyno and isinstance(store, DirectoryStore):
            log.warning(
                "FILES_URL is unset on Heroku: file results and uploads are kept on this dyno's own disk, which "
                "the other dynos cannot read and a restart wipes; set FILES_URL=s3://bucket/prefix"
            )
        return store

    @cached_property
    def uploads(self) -> Uploads:
        """Large uploads to the blob store, handed to workers as URLs."""
        settings = self.settings
        return Uploads(self.files, self.file_links, settings.inline_input_max, settings.result_ttl)

    @cached_property
    def file_links(self) -> FileLinks:
        """Signed URLs through which a worker fetches an upload from podrelay."""
        self.settings.require_secret()
        return FileLinks(self.settings.secret_key, self.settings.result_ttl, self.settings.public_base_url)

    @cached_property
    def commits(self) -> GroupCommit:
        """Group commit of concurrent requests' scripts (the accept path)."""
        return GroupCommit(self.redis)

    @cached_property
    def subscriptions(self) -> SubscriptionStore:
        """Webhook subscriptions and per-key signing secrets."""
        return SubscriptionStore(self.redis, self.settings.webhook_rotation_window)

    @cached_property
    def deliveries(self) -> DeliveryStore:
        """Webhook deliveries and their attempts."""
        return DeliveryStore(self.redis, self.settings.result_ttl, metrics=self.metrics)

    @cached_property
    def prices(self) -> PriceTable:
        """Unit prices (the registry's, with PRICE_TABLE's overrides)."""
        return PriceTable(self.settings.price_table)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        """Requests per minute per key."""
        return RateLimiter(self.redis, self.commits)

    @cached_property
    def holds(self) -> Holds:
        """Held connections per key."""
        return Holds(self.redis)

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        """Kept answers by Idempotency-Key."""
        return IdempotencyStore(self.redis, self.settings.idempotency_ttl)

    @cached_property
    def waiter(self) -> JobWaiter:
        """Wakes requests held for a job's end (`Prefer: wait`, OpenAI mode)."""
        return JobWaiter(self.redis)

    @cached_property
    def queue(self) -> Queue:
        """The RQ queue of tasks (cancels at RunPod)."""
        return Queue(QUEUE_NAME, connection=self.redis)

    @cached_property
    def tokens(self) -> CallbackTokens:
        """Signed callback URLs for RunPod."""
        self.settings.require_secret()
        return CallbackTokens(self.settings.secret_key)

    @cached_property
    def runpod_budgets(self) -> dict[str, CallBudget]:
        """`/run` and `/status` calls per endpoint per second, shared by the trackers and the direct routes."""
        return {
            "status": CallBudget(self.redis, "status", self.settings.status_budget_per_10s),
            "run": CallBudget(self.redis, "run", self.settings.run_budget_per_10s),
        }

    @cached_property
    def runpod(self) -> RunPodClient:
        """The RunPod client for one-off calls (direct routes, cancels): a few retries with backoff."""
        return self.runpod_client(retries=2, pool_size=max(8, self.settings.tracker_concurrency))

    def runpod_client(self, retries: int, pool_size: int) -> RunPodClient:
        """A RunPod client on these settings, counting its calls for `/metrics` (the one place one is built)."""
        return RunPodClient(
            self.settings.runpod_api_key,
            self.settings.runpod_api_base,
            timeout=self.settings.runpod_timeout,
            retries=retries,
            pool_size=pool_size,
            on_call=self.count_runpod_call,
        )

    @cached_property
    def circuits(self) -> Circuits:
        """Each endpoint's circuit breaker (integration/runpod/circuit.py)."""
        s = self.settings
        return Circuits(self.redis, s.circuit_failures, s.circuit_cooldown, s.lease_seconds)

    @cached_property
    def mcp(self) -> McpProcess:
        """The MCP server's child process (started by the first `/mcp` request)."""
        return McpProcess(self.settings.mcp_tool_wait)

    def close(self) -> None:
        """Stop what this process started beside itself (the MCP child)."""
        if "mcp" in self.__dict__:
            self.mcp.close()

    def count_runpod_call(self, operation: str, status: str) -> None:
        """A RunPod call and how it ended (HTTP status or error), for `/metrics`."""
        self.metrics.inc("podrelay_runpod_calls_total", operation=operation, status=status)
