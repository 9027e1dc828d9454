"""The job store on a real Redis: compare-and-set transitions, retention, leases."""

from __future__ import annotations

import time

import redis

from integration.jobs.record import Job, JobStatus
from integration.jobs.store import JOB, PENDING, JobStore


def make_job(job_id: str = "j1") -> Job:
    return Job(id=job_id, key_id="k", surface="chat", model="m", endpoint_id="ep", status=JobStatus.QUEUED, created=time.time())


def test_final_jobs_are_kept_for_result_ttl_and_unfinished_ones_forever(redis_url):
    conn = redis.Redis.from_url(redis_url)
    store = JobStore(conn, result_ttl=3600)
    done, running = make_job("done"), make_job("running")
    store.create(done)
    store.create(running)
    store.transition(done, JobStatus.COMPLETED, (JobStatus.QUEUED,), result={"ok": True})
    store.transition(running, JobStatus.SUBMITTED, (JobStatus.QUEUED,), runpod_id="rp")
    assert 3590 < conn.ttl(JOB.format("done")) <= 3600
    assert conn.ttl(JOB.format("running")) == -1  # in flight: never expires
    assert conn.zscore(PENDING, "done") is None and conn.zscore(PENDING, "running") is not None


def test_a_final_job_cannot_be_moved_again(redis_url):
    store = JobStore(redis.Redis.from_url(redis_url), result_ttl=60)
    job = make_job()
    store.create(job)
    first = store.transition(job, JobStatus.CANCELLED, (JobStatus.QUEUED, JobStatus.SUBMITTED, JobStatus.RUNNING))
    second = store.transition(job, JobStatus.COMPLETED, (JobStatus.QUEUED, JobStatus.SUBMITTED, JobStatus.RUNNING), result={})
    assert first.applied and first.previous == JobStatus.QUEUED
    assert not second.applied and second.previous == JobStatus.CANCELLED
    job = store.get("j1")
    assert job.status == JobStatus.CANCELLED and job.result is None


def test_leased_jobs_are_not_handed_out_twice_until_the_lease_lapses(redis_url):
    store = JobStore(redis.Redis.from_url(redis_url), result_ttl=60)
    for n in range(3):
        store.create(make_job(f"j{n}"))
    now = time.time()
    first = store.pending.claim_due(now, limit=10, lease=30)
    assert sorted(first) == ["j0", "j1", "j2"]
    assert store.pending.claim_due(now + 1, limit=10, lease=30) == []  # another worker gets nothing
    assert sorted(store.pending.claim_due(now + 31, limit=10, lease=30)) == ["j0", "j1", "j2"]  # the holder died
