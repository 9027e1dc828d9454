"""Jobs' deadlines (`deadline`, or a `Cancel-After` header): a job not finished by its deadline
is cancelled (at RunPod too, if it was submitted) and ends `cancelled` with the code
`deadline_exceeded`; one not submitted by then never is.

The deadlines wait in one sorted set, scored by when they fall; every tracker round takes
the ones that have fallen (`due`), and the submit step checks the job's own deadline too, so
no job is sent to RunPod after its deadline even if the round has not come yet.
"""

from __future__ import annotations

import redis

_DEADLINES = "pr:deadlines"  # job id -> its deadline (epoch seconds)
ERROR = {"code": "deadline_exceeded", "message": "The job did not finish by its deadline"}


class Deadlines:
    """The deadlines of unfinished jobs."""

    def __init__(self, conn: redis.Redis):
        self.conn = conn

    def add(self, job_id: str, deadline: float) -> None:
        """Keep a new job's deadline."""
        self.conn.zadd(_DEADLINES, {job_id: deadline})

    def due(self, now: float, most: int = 500) -> list[str]:
        """The jobs whose deadline has fallen by `now` (they stay until `done`)."""
        return [j.decode() for j in self.conn.zrangebyscore(_DEADLINES, "-inf", now, start=0, num=most)]

    def done(self, job_ids: list[str]) -> None:
        """Forget deadlines that were acted on (or whose jobs ended)."""
        if job_ids:
            self.conn.zrem(_DEADLINES, *job_ids)
