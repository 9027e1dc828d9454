"""When a job is next looked at: poll intervals that back off with age, retry delays.

Polling stays cheap at any number of jobs in flight: young jobs are polled often, old
ones rarely, and with provider callbacks on a poll is only a late confirmation.
"""

from __future__ import annotations

import random

from integration.config import Settings

MAX_RETRY_DELAY = 600.0


STREAM_INTERVAL = 0.25  # seconds between /stream reads of a streaming job


def first_poll_delay(settings: Settings, streaming: bool = False, reporting: bool = False) -> float:
    """Seconds from submission to the first look at RunPod (`reporting`: its client asked for
    progress, which only `/status` shows: looked at as without callbacks)."""
    if streaming:
        return STREAM_INTERVAL
    if settings.public_base_url and not reporting:
        return settings.callback_poll_after
    return settings.poll_min_interval


def next_poll_delay(settings: Settings, age: float, reporting: bool = False) -> float:
    """Seconds until the next `/status` call for a job submitted `age` seconds ago (`reporting`:
    its worker reports progress, which only `/status` shows, so it is polled as without callbacks)."""
    if settings.public_base_url and not reporting:
        # Callbacks carry the result; a poll only confirms a job that stays silent.
        return max(settings.callback_poll_after - age, min(max(age, 1.0), MAX_RETRY_DELAY))
    delay = min(max(age * 0.25, settings.poll_min_interval), settings.poll_max_interval)
    return delay * random.uniform(0.9, 1.1)


def retry_delay(settings: Settings, attempts: int, retry_after: float | None) -> float:
    """Backoff after RunPod was unavailable: its Retry-After, else exponential with jitter."""
    if retry_after is not None:
        return min(max(retry_after, settings.retry_base), MAX_RETRY_DELAY)
    return min(settings.retry_base * 2.0**attempts, MAX_RETRY_DELAY) * random.uniform(0.8, 1.2)
