"""The worker process: an RQ worker for tasks, with the tracker and the courier in threads.

RQ's `SimpleWorker` runs tasks in-process (no fork per task): podrelay's tasks are
short HTTP calls with timeouts, and a fork per task would cost more than the task.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from rq import Queue, SimpleWorker

from integration.files.sweep import sweep
from integration.jobs.tasks import QUEUE_NAME
from integration.redis.connection import connect
from integration.resources import Resources
from workers import context
from workers.deliver import Courier
from workers.track import Tracker

log = logging.getLogger(__name__)

RQ_CONNECTIONS = 2  # RQ's own: its BLPOP for tasks, and its pub/sub listener for commands


class Worker(SimpleWorker):
    """RQ's in-process worker, which remembers that it was asked to stop."""

    stopping = False

    def request_stop(self, signum, frame):
        """RQ's warm stop, remembered (a Redis error after it ends the worker instead of a retry)."""
        self.stopping = True
        super().request_stop(signum, frame)


def sweep_files(resources: Resources, stop: threading.Event) -> None:
    """Every minute, offer to sweep the expired jobs' files (one process a FILES_SWEEP_INTERVAL)."""
    interval = resources.settings.files_sweep_interval
    while not stop.wait(min(interval, 60.0)):
        try:
            sweep(resources.files, resources.jobs.existing, resources.redis, interval)
        except Exception:  # noqa: BLE001 (a store or Redis outage: the next round tries again)
            log.exception("file sweep failed; trying again in a while")


def run_worker(resources: Resources) -> None:
    """Run until SIGTERM/SIGINT: RQ tasks in this thread, tracker and courier in others."""
    if "redis" in vars(resources):
        raise RuntimeError("the worker's Redis pool must be sized before its first use")
    # The process's share of REDIS_WORKER_CONNECTIONS, after RQ's own.
    resources.redis_connections = max(resources.settings.redis_worker_connections - RQ_CONNECTIONS, 3)
    context.set_resources(resources)
    stop = threading.Event()
    threads = [
        threading.Thread(target=Tracker(resources, stop).run, name="tracker", daemon=True),
        threading.Thread(target=Courier(resources, stop).run, name="courier", daemon=True),
        threading.Thread(target=sweep_files, args=(resources, stop), name="file-sweep", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        delay = 1.0
        while True:
            worker = None
            try:
                settings = resources.settings
                tls = settings.redis_tls_verify, settings.redis_tls_ca_file
                connection = connect(resources.redis_url, True, *tls, max_connections=RQ_CONNECTIONS)
                worker = Worker([Queue(QUEUE_NAME, connection=connection)], connection=connection)
                # No RQ scheduler: it is a forked child that inherits this process's Redis
                # sockets, so after a SIGKILL Redis would go on handing jobs to the dead worker.
                worker.work(with_scheduler=False, logging_level="WARNING")
                return
            except redis.exceptions.ConnectionError as error:
                if worker is not None and worker.stopping:  # SIGTERM came, then Redis went: done
                    log.warning("Redis unreachable while the worker stops (%s); stopping anyway", error)
                    return
                # RQ rides out Redis outages once working, but not while it registers: wait,
                # rather than exit (`start` would stop every process with this one).
                log.warning("Redis unreachable while the worker starts (%s); again in %.0f s", error, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
