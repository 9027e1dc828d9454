"""Waiting for a job to end without polling: `Prefer: wait` (RFC 7240, as Replicate uses it).

Every status change is published on the job's channel by the transition script. Each
web process has one listener thread on one pub/sub connection; a waiting request
registers, the listener subscribes to its job's channel and wakes it on a message. A
waiting request costs no Redis commands while it waits: a SUBSCRIBE, a read of the job
once subscribed (so a change just before cannot be missed) and after each wake-up, and an
UNSUBSCRIBE.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from integration.jobs.log import CHANGED
from integration.jobs.record import Job
from integration.jobs.store import JobStore

log = logging.getLogger(__name__)

LIVENESS_EVERY = 2.5  # seconds between looks at whether the waiting key was revoked (with is_live's cache: within 5 s)
_WAIT = re.compile(r"^\s*wait\s*(?:=\s*(\d+))?\s*$", re.IGNORECASE)


def preferred_wait(header: str | None, cap: float) -> float | None:
    """Seconds asked for by `Prefer: wait[=N]` (capped), or None when not asked."""
    for preference in (header or "").split(","):
        match = _WAIT.match(preference.split(";")[0])
        if match:
            return min(float(match.group(1)) if match.group(1) else cap, cap)
    return None


class JobWaiter:
    """Wakes threads waiting on jobs when their status changes."""

    def __init__(self, conn: redis.Redis):
        self.conn = conn
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = {}
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._confirmations: dict[str, list[threading.Event]] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False

    def stop(self) -> None:
        """The process is shutting down: every wait ends now (the held request answers with its
        job id), and new ones end at once."""
        self._stopping = True
        with self._lock:
            for events in self._waiting.values():
                for event in events:
                    event.set()

    @property
    def waiting(self) -> int:
        """How many requests wait now (in this process)."""
        with self._lock:
            return sum(len(events) for events in self._waiting.values())

    @contextmanager
    def watching(self, job_id: str) -> Iterator[threading.Event]:
        """An event set at each change of the job (status or new output), subscribed before it is handed out."""
        self._start()
        woken, subscribed = threading.Event(), threading.Event()
        with self._lock:
            self._waiting.setdefault(job_id, set()).add(woken)
        self._requests.put(("subscribe", job_id, subscribed))
        try:
            subscribed.wait(5.0)
            yield woken
        finally:
            with self._lock:
                events = self._waiting.get(job_id, set())
                events.discard(woken)
                if not events:
                    self._waiting.pop(job_id, None)
                    self._requests.put(("unsubscribe", job_id, None))

    def wait(self, job_id: str, timeout: float, is_final: Callable[[], bool], alive: Callable[[], bool] | None = None) -> bool:
        """Block up to `timeout` seconds until `is_final()`; True if it became so. `alive()` is
        asked every few seconds: False (the caller's key was revoked) ends the wait."""
        deadline = time.monotonic() + timeout
        with self.watching(job_id) as woken:
            changed = True  # read the job first, then only when its channel says it changed
            while True:
                if changed and is_final():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping or (alive is not None and not alive()):
                    return False
                changed = woken.wait(min(remaining, LIVENESS_EVERY))  # a tick to ask alive(), not a poll
                woken.clear()

    def wait_for_end(self, jobs: JobStore, job_id: str, seconds: float, alive: Callable[[], bool] | None = None) -> Job | None:
        """The job once final, if that happens within `seconds` (and the caller stays alive); else None."""
        current: list[Job | None] = [None]

        def finished() -> bool:
            current[0] = jobs.get(job_id)
            return current[0] is None or current[0].status.final

        return current[0] if self.wait(job_id, seconds, finished, alive) else None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._listen, name="job-waiter", daemon=True)
                self._thread.start()

    def _listen(self) -> None:
        while True:
            try:
                self._listen_once()
            except redis.exceptions.RedisError as error:
                log.warning("job waiter lost Redis (%s); reconnecting", error)
                with self._lock:  # wake everyone: they re-read their jobs
                    for events in self._waiting.values():
                        for event in events:
                            event.set()
                time.sleep(1.0)

    def _handle(self, pubsub, subscribed: set[str], action: str, job_id: str, confirmed: threading.Event | None) -> None:
        """Apply one subscribe/unsubscribe request on the listener's own connection."""
        channel = CHANGED.format(job_id)
        if action == "subscribe":
            if channel in subscribed:
                if confirmed:
                    confirmed.set()
                return
            subscribed.add(channel)
            if confirmed:
                self._confirmations.setdefault(channel, []).append(confirmed)
            pubsub.subscribe(channel)
        elif channel in subscribed and job_id not in self._waiting:
            subscribed.discard(channel)
            pubsub.unsubscribe(channel)

    def _listen_once(self) -> None:
        pubsub = self.conn.pubsub()
        subscribed: set[str] = set()
        with self._lock:  # after a reconnect, resubscribe everything still waited on
            for job_id in self._waiting:
                self._requests.put(("subscribe", job_id, None))
        while True:
            if not subscribed:  # nothing to listen to: sleep until a request comes
                self._handle(pubsub, subscribed, *self._requests.get())
            while not self._requests.empty():
                self._handle(pubsub, subscribed, *self._requests.get())
            if not subscribed:
                continue
            message = pubsub.get_message(timeout=0.02)
            if not message:
                continue
            channel = message["channel"].decode()
            if message["type"] == "subscribe":
                for confirmed in self._confirmations.pop(channel, []):
                    confirmed.set()
            elif message["type"] == "message":
                with self._lock:
                    for event in self._waiting.get(channel.split(":", 2)[2], ()):
                        event.set()
