"""The baselines for the enqueue benchmark: a trivial Flask route (no Redis, no validation),
and the same route plus one Redis round trip (PING), the least any route that stores
something durably must do."""

from __future__ import annotations

import os

import redis
from flask import Flask, jsonify

app = Flask(__name__)
_redis = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
ANSWER = {"id": "f3de27f8-61d5-4d58-aad1-a7d63f8a6e0f", "status": "queued"}


@app.post("/v1/chat/completions")
def accept():
    return jsonify(ANSWER), 202


@app.post("/v1/redis-round-trip")
def accept_after_redis():
    _redis.ping()
    return jsonify(ANSWER), 202


@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})
