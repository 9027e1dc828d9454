"""The caller's own account: `GET /v1/usage` (its limits, spend this month, jobs in flight)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from integration.accounts import limits
from integration.api.admission import admit
from integration.api.context import resources

bp = Blueprint("account", __name__)
bp.before_request(admit)


@bp.get("/usage")
def usage():
    """The key's effective limits and its usage in the current month (UTC)."""
    used = limits.usage(resources().redis, g.key_id)
    return jsonify({"object": "usage", "key_id": g.key_id, "limits": g.limits.to_dict(), "usage": used.to_dict()})
