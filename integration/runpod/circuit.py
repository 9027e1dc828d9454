"""A circuit breaker per endpoint: podrelay stops sending `/run` calls to an endpoint that
keeps failing, and tries again with one probe at a time.

Closed: every submission goes. After `CIRCUIT_FAILURES` consecutive `/run` failures (5xx,
no answer, or RunPod refusing the API key) it opens: nothing is submitted to the endpoint
for `CIRCUIT_COOLDOWN` seconds, and its queued jobs wait in their queues (they are not
failed). Then it is half-open: one probe goes. If the probe succeeds the circuit closes,
and if it fails the circuit opens again for another cool-down. The state is in Redis,
shared by every worker process, and shown in `/readyz`, `/metrics` and the admin view of
`GET /v1/runpod/{surface}/health`.
"""

from __future__ import annotations

import logging

import redis

log = logging.getLogger(__name__)

_CIRCUIT = "pr:circuit:{}"  # endpoint -> {state, failures, until}
_OPEN = "pr:circuits:open"  # endpoints whose circuit is not closed
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

# KEYS[1] the endpoint's hash, KEYS[2] the set of open circuits. ARGV[1] the endpoint,
# ARGV[2] 1 for a success / 0 for a failure, ARGV[3] now, ARGV[4] failures to open,
# ARGV[5] the cool-down. Answers the state before and after.
_RECORD = """
local circuit, open_set = KEYS[1], KEYS[2]
local endpoint, ok, now = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
local threshold, cooldown = tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HGET', circuit, 'state') or 'closed'
if ok then
  if state ~= 'closed' or redis.call('HEXISTS', circuit, 'failures') == 1 then
    redis.call('DEL', circuit)
    redis.call('SREM', open_set, endpoint)
  end
  return {state, 'closed'}
end
local failures = redis.call('HINCRBY', circuit, 'failures', 1)
redis.call('EXPIRE', circuit, 86400)
if state == 'half_open' or (state == 'closed' and failures >= threshold) then
  redis.call('HSET', circuit, 'state', 'open', 'until', tostring(now + cooldown))
  redis.call('SADD', open_set, endpoint)
  return {state, 'open'}
end
return {state, state}
"""

# KEYS[1] the endpoint's hash. ARGV[1] now, ARGV[2] how long a probe may take. Answers how
# many submissions may go: -1 any, 0 none, 1 the probe (the circuit turns half-open).
_ALLOWED = """
local circuit, now, probe = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HGET', circuit, 'state')
if not state or state == 'closed' then return -1 end
if now < tonumber(redis.call('HGET', circuit, 'until') or '0') then return 0 end
redis.call('HSET', circuit, 'state', 'half_open', 'until', tostring(now + probe))
return 1
"""


class Circuits:
    """Every endpoint's circuit."""

    def __init__(self, conn: redis.Redis, failures: int, cooldown: float, probe_seconds: float):
        self.conn = conn
        self.failures, self.cooldown, self.probe_seconds = failures, cooldown, probe_seconds
        self._record = conn.register_script(_RECORD)
        self._allowed = conn.register_script(_ALLOWED)

    def allowed(self, endpoint: str, now: float) -> int | None:
        """How many `/run` calls may go to `endpoint` now: None any, 0 none, 1 a probe."""
        if self.failures <= 0:
            return None
        found = int(self._allowed(keys=[_CIRCUIT.format(endpoint)], args=[now, self.probe_seconds]))
        return None if found < 0 else found

    def record(self, endpoint: str, ok: bool, now: float) -> tuple[str, str]:
        """A `/run` call's outcome; the circuit's state before and after (logged when it changes)."""
        if self.failures <= 0:
            return CLOSED, CLOSED
        args = [endpoint, "1" if ok else "0", now, self.failures, self.cooldown]
        before, after = (s.decode() for s in self._record(keys=[_CIRCUIT.format(endpoint), _OPEN], args=args))
        if after != before:
            if after == OPEN:
                log.warning(
                    "endpoint %s: circuit open after repeated /run failures; its jobs wait %.0f s", endpoint, self.cooldown
                )
            elif after == CLOSED:
                log.info("endpoint %s: circuit closed, /run answers again", endpoint)
        return before, after

    def state(self, endpoint: str) -> str:
        """One endpoint's state."""
        return (self.conn.hget(_CIRCUIT.format(endpoint), "state") or b"closed").decode()


def open_circuits(conn: redis.Redis) -> dict[str, dict]:
    """The circuits that are not closed: endpoint -> {state, failures, until}."""
    endpoints = sorted(e.decode() for e in conn.smembers(_OPEN))
    pipe = conn.pipeline(transaction=False)
    for endpoint in endpoints:
        pipe.hgetall(_CIRCUIT.format(endpoint))
    shown = {}
    for endpoint, raw in zip(endpoints, pipe.execute(), strict=True):
        values = {k.decode(): v.decode() for k, v in raw.items()}
        if values.get("state") in (OPEN, HALF_OPEN):
            shown[endpoint] = {
                "state": values["state"],
                "failures": int(values.get("failures", 0)),
                "until": float(values["until"]),
            }
    return shown


def count_open(pipe) -> None:
    """Queue the count of circuits not closed on a pipeline (for the `/metrics` gauges)."""
    pipe.scard(_OPEN)
