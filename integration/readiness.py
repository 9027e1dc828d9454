"""Readiness: can this installation take and finish jobs now? (`GET /readyz`)

Ready means Redis answers, at least one worker process has beaten its heart in the last
`HEARTBEAT_STALE` seconds (each tracker beats every `HEARTBEAT_EVERY`), the backlog of
work already due is below `READY_MAX_OVERDUE` jobs and deliveries, and RunPod has not
rejected podrelay's API key since the last accepted submission.
"""

from __future__ import annotations

import os
import socket
import time

import redis

from integration.jobs.store import OVERDUE_AFTER, count_pending
from integration.jobs.tasks import QUEUE_NAME
from integration.runpod import refusals
from integration.runpod.circuit import count_open, open_circuits
from integration.webhooks.deliveries import count_due

RQ_QUEUE = f"rq:queue:{QUEUE_NAME}"  # RQ's list of waiting tasks
WORKERS = "pr:workers"  # worker process -> time of its last heartbeat
HEARTBEAT_EVERY = 5.0
HEARTBEAT_STALE = 30.0


def worker_name() -> str:
    """This worker process's name in the heartbeat set: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(conn: redis.Redis, name: str, now: float | None = None) -> None:
    """Record that worker `name` is alive (and forget ones silent for an hour)."""
    now = time.time() if now is None else now
    pipe = conn.pipeline(transaction=False)
    pipe.zadd(WORKERS, {name: now})
    pipe.zremrangebyscore(WORKERS, "-inf", now - 3600)
    pipe.execute()


def readiness(conn: redis.Redis, max_overdue: int) -> tuple[bool, dict]:
    """(ready, checks): what a load balancer or an operator needs to know."""
    now = gauges(conn)
    workers, unfinished = now["podrelay_workers_alive"][1], now["podrelay_jobs_unfinished"][1]
    overdue_jobs, overdue_deliveries = now["podrelay_jobs_overdue"][1], now["podrelay_deliveries_overdue"][1]
    checks = {
        "redis": "ok",
        "workers": workers,
        "unfinished_jobs": unfinished,
        "overdue_jobs": overdue_jobs,
        "overdue_deliveries": overdue_deliveries,
    }
    problems = []
    if workers == 0:
        problems.append(f"no worker process has reported in the last {HEARTBEAT_STALE:.0f} s")
    if overdue_jobs + overdue_deliveries > max_overdue:
        problems.append(f"{overdue_jobs + overdue_deliveries} jobs and deliveries overdue (limit {max_overdue})")
    refused = refusals.last(conn)
    if refused is not None:
        checks["runpod"] = "api_key_rejected"
        problems.append(
            f"RunPod rejected podrelay's API key (HTTP {refused['status']}, endpoint {refused['endpoint_id']}): "
            "jobs cannot be submitted; fix RUNPOD_API_KEY"
        )
    circuits = open_circuits(conn)
    if circuits:  # podrelay still accepts jobs: they wait until the endpoint answers again
        checks["circuits"] = circuits
    if problems:
        checks["problems"] = problems
    return not problems, checks


def gauges(conn: redis.Redis) -> dict[str, tuple[str, float]]:
    """Queue depths and live workers, for `/metrics` and `/readyz`: name -> (help, value)."""
    now = time.time()
    pipe = conn.pipeline(transaction=False)
    count_pending(pipe, now)
    count_due(pipe, now)
    pipe.zcount(WORKERS, now - HEARTBEAT_STALE, "+inf")
    pipe.llen(RQ_QUEUE)
    count_open(pipe)
    unfinished, overdue_jobs, deliveries, overdue_deliveries, workers, tasks, circuits = pipe.execute()
    return {
        "podrelay_jobs_unfinished": ("Jobs accepted and not yet final", unfinished),
        "podrelay_jobs_overdue": (f"Unfinished jobs due more than {OVERDUE_AFTER:.0f} s ago", overdue_jobs),
        "podrelay_deliveries_pending": ("Webhook deliveries waiting for an attempt (incl. retries)", deliveries),
        "podrelay_deliveries_overdue": (f"Deliveries due more than {OVERDUE_AFTER:.0f} s ago", overdue_deliveries),
        "podrelay_workers_alive": (f"Worker processes that reported in the last {HEARTBEAT_STALE:.0f} s", workers),
        "podrelay_rq_queue_length": ("RQ tasks (cancels) waiting", tasks),
        "podrelay_runpod_circuits_open": ("Endpoints whose circuit is open or half-open (no /run calls but a probe)", circuits),
    }
