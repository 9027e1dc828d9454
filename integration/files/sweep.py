"""The sweep: a job's files go when its record does.

A job record expires `RESULT_TTL` after the job ends, and Redis tells nobody. So every
`FILES_SWEEP_INTERVAL` one worker process (whichever takes the lock first) lists the
store's job folders and removes those whose job has no record any more: expired jobs,
and uploads of a request that was refused before its job was stored. A folder written
in the last `GRACE` seconds is left alone: its job may be being stored right now.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import redis

from integration.files.store import DirectoryStore, S3Store

log = logging.getLogger(__name__)

LOCK = "pr:files:sweep"  # held for one interval by the process that sweeps
GRACE = 600.0
BATCH = 500


def sweep(
    files: DirectoryStore | S3Store,
    existing: Callable[[list[str]], set[str]],
    conn: redis.Redis,
    interval: float,
    grace: float = GRACE,
) -> int | None:
    """Remove the files of jobs that `existing` no longer knows; the number of jobs whose
    files went, or None when another process swept within `interval`."""
    if not conn.set(LOCK, os.getpid(), nx=True, ex=max(int(interval), 1)):
        return None
    removed, batch, now = 0, [], time.time()
    for job_id, written in files.groups():
        if now - written >= grace:
            batch.append(job_id)
        if len(batch) >= BATCH:
            removed += _remove_gone(files, existing, batch)
            batch = []
    removed += _remove_gone(files, existing, batch)
    if removed:
        log.info("file sweep: removed the files of %d expired jobs from %r", removed, files)
    return removed


def _remove_gone(files: DirectoryStore | S3Store, existing: Callable[[list[str]], set[str]], job_ids: list[str]) -> int:
    if not job_ids:
        return 0
    kept = existing(job_ids)
    gone = [job_id for job_id in job_ids if job_id not in kept]
    for job_id in gone:
        files.delete_group(job_id)
    return len(gone)
