"""API keys: created by the CLI, stored hashed, looked up on every `/v1` request.

Keys are 256-bit random tokens, so a plain SHA-256 is the right hash: it cannot be
brute-forced and costs one lookup per request. The key itself is never stored or logged.
Each process remembers a lookup (the key's id and limits) for `CACHE_SECONDS`, so a
revoked key stops working, and changed limits apply, within that time.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import redis

from integration.accounts.limits import LIMIT_FIELDS, Limits, parse_limit
from integration.accounts.ratelimit import RateCount
from integration.config import Settings
from integration.redis import scripts
from integration.redis.group_commit import GroupCommit

KEY_PREFIX = "pr_"
CACHE_SECONDS = 5.0
LIVE_SECONDS = 2.5
_CACHE_LIMIT = 10_000
_cache: dict[str, tuple[Caller | None, float]] = {}  # digest -> (caller or None, expiry)
_BY_HASH = "pr:apikey:{}"  # hash of the key -> key id
_KEY = "pr:key:{}"  # key id -> record
_ALL = "pr:keys"  # set of key ids


@dataclass(frozen=True)
class ApiKey:
    """A stored API key (without the secret)."""

    id: str
    name: str
    created: float
    revoked: bool = False
    prefix: str = ""
    admin: bool = False

    def to_dict(self) -> dict:
        """The key's record, without its digest."""
        body = {"id": self.id, "name": self.name, "created": int(self.created), "revoked": self.revoked, "prefix": self.prefix}
        return {**body, "admin": self.admin}

    @classmethod
    def from_redis(cls, data: dict) -> ApiKey:
        """The key from its hash, as `HGETALL` answers it."""
        return cls(
            id=data[b"id"].decode(),
            name=data[b"name"].decode(),
            created=float(data[b"created"]),
            revoked=data.get(b"revoked") == b"1",
            prefix=data.get(b"prefix", b"").decode(),
            admin=data.get(b"admin") == b"1",
        )


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's id, its effective limits, and whether it is an admin key."""

    key_id: str
    limits: Limits
    admin: bool = False
    rate: RateCount | None = None  # a request whose rate-limit count goes with its job's write


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(conn: redis.Redis, name: str, admin: bool = False) -> tuple[ApiKey, str]:
    """Create a key (an admin key may run operator-wide operations); returns the record and the
    secret, which is shown only this once."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id="key_" + secrets.token_hex(8), name=name, created=time.time(), prefix=secret[:10], admin=admin)
    pipe = conn.pipeline()
    pipe.hset(
        _KEY.format(key.id),
        mapping={
            "id": key.id,
            "name": name,
            "created": key.created,
            "revoked": "0",
            "digest": _digest(secret),
            "prefix": key.prefix,
            "admin": "1" if admin else "0",
        },
    )
    pipe.set(_BY_HASH.format(_digest(secret)), key.id)
    pipe.sadd(_ALL, key.id)
    pipe.execute()
    return key, secret


def list_keys(conn: redis.Redis) -> list[ApiKey]:
    """Every key, oldest first."""
    pipe = conn.pipeline()
    for key_id in conn.smembers(_ALL):
        pipe.hgetall(_KEY.format(key_id.decode()))
    return sorted((ApiKey.from_redis(d) for d in pipe.execute() if d), key=lambda k: k.created)


def revoke_key(conn: redis.Redis, key_id: str) -> bool:
    """Revoke a key by id or name; False when there is no such key."""
    key = find_key(conn, key_id)
    if key is None:
        return False
    digest = conn.hget(_KEY.format(key.id), "digest")
    pipe = conn.pipeline()
    pipe.hset(_KEY.format(key.id), "revoked", "1")
    if digest:
        pipe.delete(_BY_HASH.format(digest.decode()))
        _cache.pop(digest.decode(), None)
    pipe.execute()
    return True


def find_key(conn: redis.Redis, id_or_name: str) -> ApiKey | None:
    """A key by its id, or by its name when one live key has it (ValueError when several do: no guessing)."""
    found = list_keys(conn)
    by_id = next((k for k in found if k.id == id_or_name), None)
    if by_id is not None:
        return by_id
    named = [k for k in found if k.name == id_or_name]
    live = [k for k in named if not k.revoked] or named
    if len(live) > 1:
        raise ValueError(f"{len(live)} keys are named {id_or_name!r}: give the id ({', '.join(k.id for k in live)})")
    return live[0] if live else None


def set_limits(conn: redis.Redis, key_id: str, **limits: str | None) -> None:
    """Set a key's limits (`rpm`, `concurrency`, `budget`): a number, `unlimited`, or None for the default."""
    changes = {
        name: None if value in ("default", "") else parse_limit(name, value)
        for name, value in limits.items()
        if value is not None
    }
    for name, stored in changes.items():  # every value is checked before any is written
        if stored is None:
            conn.hdel(_KEY.format(key_id), name)
        else:
            conn.hset(_KEY.format(key_id), name, stored)
    _cache.clear()  # this process sees the change at once; others within CACHE_SECONDS


def stored_limits(conn: redis.Redis, key_id: str) -> dict[str, str]:
    """The limit fields set on a key's record (absent ones take the defaults)."""
    values = conn.hmget(_KEY.format(key_id), *LIMIT_FIELDS)
    return {name: v.decode() for name, v in zip(LIMIT_FIELDS, values, strict=True) if v is not None}


_live: dict[str, tuple[bool, float]] = {}  # key id -> (not revoked, until when that holds)


def is_live(conn: redis.Redis, key_id: str) -> bool:
    """Whether the key is still valid (not revoked), read at most every LIVE_SECONDS per process:
    held requests and streams ask every 2.5 s, so they end within 5 s of a revocation."""
    now = time.monotonic()
    cached = _live.get(key_id)
    if cached and cached[1] > now:
        return cached[0]
    if cached:  # one asks Redis; the others waiting on the key keep the last answer meanwhile
        _live[key_id] = (cached[0], now + LIVE_SECONDS)
    live = conn.hget(_KEY.format(key_id), "revoked") == b"0"
    if len(_live) >= _CACHE_LIMIT:
        _live.clear()
    _live[key_id] = (live, now + LIVE_SECONDS)
    return live


def lookup(conn: redis.Redis, secret: str, settings: Settings, commits: GroupCommit | None = None) -> Caller | None:
    """The caller with this secret (a live key), or None: from this process's cache of the last
    CACHE_SECONDS, else one script (batched with other requests' writes by `commits`)."""
    digest = _digest(secret)
    now = time.monotonic()
    cached = _cache.get(digest)
    if cached and cached[1] > now:
        return cached[0]
    script = scripts.load(conn, __file__, "lookup.lua")
    keys, args = [_BY_HASH.format(digest)], [_KEY.format(""), *LIMIT_FIELDS]
    found = commits.call(script, keys, args) if commits else script(keys=keys, args=args)
    caller = None
    if found:
        key_id, admin, *values = found
        limits = {name: v.decode() for name, v in zip(LIMIT_FIELDS, values, strict=True) if v is not None}
        caller = Caller(key_id.decode(), Limits.resolve(limits, settings), admin == b"1")
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[digest] = (caller, now + CACHE_SECONDS)
    return caller
