"""The baselines for the enqueue benchmark, served by gunicorn with the Procfile's settings:

- a trivial Flask route (no Redis, no validation);
- the same route plus one Redis round trip (PING), the least any route that stores
  something durably must do;
- the route a user would write in ten lines with RQ: check a Bearer key, `Queue.enqueue`
  the request body, answer the job's id (RQ's enqueue is a few Redis commands in one
  pipeline: the job hash, the queue's list, its registry); the key either compared with
  one in the environment, or, as a service with many keys would, looked up in Redis (its
  SHA-256 in a set: one more round trip).
"""

from __future__ import annotations

import hashlib
import os

import redis
from flask import Flask, abort, jsonify, request
from rq import Queue

app = Flask(__name__)
_redis = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
_queue = Queue("bench-rq", connection=_redis)
_API_KEY = os.environ.get("BENCH_API_KEY", "")
_KEYS = "bench-rq:keys"
_redis.sadd(_KEYS, hashlib.sha256(_API_KEY.encode()).hexdigest())
ANSWER = {"id": "f3de27f8-61d5-4d58-aad1-a7d63f8a6e0f", "status": "queued"}


def work(body: dict) -> dict:
    """The RQ job's function (never run: no RQ worker listens on `bench-rq`)."""
    return body


@app.post("/v1/chat/completions")
def accept():
    return jsonify(ANSWER), 202


@app.post("/v1/redis-round-trip")
def accept_after_redis():
    _redis.ping()
    return jsonify(ANSWER), 202


@app.post("/v1/rq")
def accept_with_rq():
    if request.headers.get("Authorization") != f"Bearer {_API_KEY}":
        abort(401)
    job = _queue.enqueue(work, request.get_json())
    return jsonify({"id": job.id, "status": "queued"}), 202


@app.post("/v1/rq-key-in-redis")
def accept_with_rq_and_a_stored_key():
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not _redis.sismember(_KEYS, hashlib.sha256(header[7:].encode()).hexdigest()):
        abort(401)
    job = _queue.enqueue(work, request.get_json())
    return jsonify({"id": job.id, "status": "queued"}), 202


@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})
