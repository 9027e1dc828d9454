"""The baseline for the enqueue benchmark: a trivial Flask route, no Redis, no validation."""

from __future__ import annotations

from flask import Flask, jsonify

app = Flask(__name__)


@app.post("/v1/chat/completions")
def accept():
    return jsonify({"id": "f3de27f8-61d5-4d58-aad1-a7d63f8a6e0f", "status": "queued"}), 202


@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})
