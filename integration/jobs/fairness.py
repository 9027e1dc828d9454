"""Fair share of each endpoint's `/run` budget across API keys: the submit queue.

A queued job waits here, in its key's queue on its endpoint, until the tracker has budget
for that endpoint; the tracker then takes the next jobs by stride scheduling
(`fair_pop.lua`): each key with jobs waiting gets a share in proportion to its weight
(`keys limits --weight`, default 1), so a key that queued 10,000 jobs and one that queued 10
get half each while both wait. Within a key, jobs leave by priority (`high`, `normal`,
`low`), then by arrival.

The queue is an order, not the job's only record: the job stays in the pending set, due
again after `WAIT_SAFETY` in case a tracker died holding it, and joining the queue twice
keeps its first place.
"""

from __future__ import annotations

import redis

from integration.redis import scripts

PRIORITIES = {"high": 0, "normal": 1, "low": 2}
_PRIORITY_SPAN = 1e10  # a priority's scores lie above every arrival time (epoch seconds) of the one before
WAIT_SAFETY = 600.0  # a waiting job is due in the pending set again after this long (a tracker's crash)
_ENDPOINTS = "pr:fair:endpoints"
_PREFIX = "pr:fair:{}:"  # + keys | strides | clock | q:<key id>


def score(priority: str | None, created: float) -> float:
    """A job's place in its key's queue: its priority first, then when it arrived."""
    return PRIORITIES.get(priority or "normal", 1) * _PRIORITY_SPAN + created


class FairQueue:
    """The submit queues of every endpoint, in Redis."""

    def __init__(self, conn: redis.Redis):
        self.conn = conn
        self._pop = scripts.load(conn, __file__, "fair_pop.lua")
        self._push = scripts.load(conn, __file__, "fair_push.lua")

    @staticmethod
    def _keys(endpoint: str) -> list[str]:
        base = _PREFIX.format(endpoint)
        return [base + "keys", base + "strides", base + "clock", _ENDPOINTS]

    def push(self, endpoint: str, waiting: list[tuple[str, float, str, float]]) -> None:
        """Queue jobs on `endpoint`: (key id, weight, job id, score) each."""
        if not waiting:
            return
        args: list = [endpoint, _PREFIX.format(endpoint) + "q:"]
        for key_id, weight, job_id, place in waiting:
            args += [key_id, repr(1.0 / weight), job_id, repr(place)]
        self._push(keys=self._keys(endpoint), args=args)

    def pop(self, endpoint: str, most: int) -> list[str]:
        """The next `most` job ids to submit on `endpoint`, fairly across keys (they leave the queue)."""
        if most <= 0:
            return []
        found = self._pop(keys=self._keys(endpoint), args=[most, _PREFIX.format(endpoint) + "q:", endpoint])
        return [job_id.decode() for job_id in found]

    def endpoints(self) -> list[str]:
        """The endpoints with jobs waiting."""
        return sorted(e.decode() for e in self.conn.smembers(_ENDPOINTS))

    def waiting(self, endpoint: str) -> dict[str, int]:
        """How many jobs each key has waiting on `endpoint`."""
        keys = [k.decode() for k in self.conn.zrange(self._keys(endpoint)[0], 0, -1)]
        pipe = self.conn.pipeline(transaction=False)
        for key_id in keys:
            pipe.zcard(_PREFIX.format(endpoint) + "q:" + key_id)
        return dict(zip(keys, pipe.execute(), strict=True))
