"""Idempotency keys for POST requests, on Stripe's rules.

The first answer to a POST with `Idempotency-Key` is kept (`IDEMPOTENCY_TTL`, 24 h) and
replayed, byte for byte, to every later request of the same API key with the same key
and the same request (method, path, query and body); the same key with another request
is refused with 422, and while the first request is still being answered, 409. Keys are
per API key. Answers that depend on the moment rather than the request (429, 402, 409,
5xx) and streamed answers are not kept: the key is released and a retry runs afresh.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import redis

RECORD = "pr:idem:{}:{}"  # per API key and sha256 of the idempotency key
MAX_KEY_LENGTH = 255
KEPT_EXCEPT = {402, 409, 429}  # and every 5xx
REPLAYED_HEADERS = ("Content-Type", "Location", "Preference-Applied")

# Claim a key. KEYS[1] the record. ARGV[1] the request's fingerprint, ARGV[2] seconds a
# claim lasts. Answers {'new'}, {'mismatch'}, {'busy'} or {'done', status, headers, body}.
_BEGIN = """
local record, fingerprint, claim_seconds = KEYS[1], ARGV[1], ARGV[2]
local stored = redis.call('HGET', record, 'fingerprint')
if not stored then
  redis.call('HSET', record, 'fingerprint', fingerprint, 'state', 'pending')
  redis.call('EXPIRE', record, claim_seconds)
  return {'new'}
end
if stored ~= fingerprint then return {'mismatch'} end
if redis.call('HGET', record, 'state') ~= 'done' then return {'busy'} end
local answer = redis.call('HMGET', record, 'status', 'headers', 'body')
return {'done', answer[1], answer[2], answer[3]}
"""


@dataclass(frozen=True)
class StoredAnswer:
    """A kept answer: status, the headers that describe the body, the body's bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes two requests the same request."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyStore:
    """Claims, keeps and replays answers by (API key, idempotency key)."""

    def __init__(self, conn: redis.Redis, ttl: int):
        self.conn = conn
        self.ttl = ttl
        self._begin = conn.register_script(_BEGIN)

    @staticmethod
    def record(key_id: str, idempotency_key: str) -> str:
        """The record's Redis key for an API key and an idempotency key (hashed)."""
        return RECORD.format(key_id, hashlib.sha256(idempotency_key.encode()).hexdigest())

    def begin(self, record: str, request_fingerprint: str, claim_seconds: int) -> tuple[str, StoredAnswer | None]:
        """('new', None) when this request now owns the key; ('mismatch'|'busy', None); ('done', answer).

        A claim lapses after `claim_seconds` (the longest the request may be held, plus a
        margin), so a retry is not refused for long when the process answering died."""
        answer = self._begin(keys=[record], args=[request_fingerprint, claim_seconds])
        state = answer[0].decode()
        if state != "done":
            return state, None
        return state, StoredAnswer(int(answer[1]), json.loads(answer[2]), answer[3])

    def finish(self, record: str, status: int, headers: dict[str, str], body: bytes | None) -> None:
        """Keep the answer (`body` None: do not keep it, release the key)."""
        if body is None or status >= 500 or status in KEPT_EXCEPT:
            self.conn.delete(record)
            return
        pipe = self.conn.pipeline()
        pipe.hset(record, mapping={"state": "done", "status": status, "headers": json.dumps(headers), "body": body})
        pipe.expire(record, self.ttl)
        pipe.execute()
