"""Liveness: `GET /healthz` answers 200 as soon as the web process serves (no key needed)."""

from __future__ import annotations

from flask import Blueprint, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})
