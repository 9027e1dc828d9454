"""The queue surface: `POST /v1/<surface route>` stores a job and answers 202 at once.

One route per registry entry. Accepting never waits for RunPod: the job is written to
Redis, due at once in the pending set, in one round trip, and a worker does the rest.
With `Prefer: wait[=N]` (RFC 7240) the answer is held until the job ends (200 with the
job) or N seconds pass (the usual 202); waiting holds no worker and polls nothing.
"""

from __future__ import annotations

import logging
import time

import redis
from flask import Blueprint, g, jsonify, request

from integration import surfaces
from integration.api.admission import admit
from integration.api.context import alive, caller, hold, json_body, resources
from integration.jobs.accept import accept
from integration.jobs.record import Job
from integration.jobs.waiting import preferred_wait
from integration.surfaces.fields import deadline_of, load

log = logging.getLogger(__name__)
bp = Blueprint("enqueue", __name__)
bp.before_request(admit)


def enqueue_answer(job: Job, surface: surfaces.Surface) -> dict:
    """The enqueue object (seed 000's shape)."""
    return {
        "id": job.id,
        "object": surface.object,
        "created": int(job.created),
        "status": job.status.value,
        "surface": job.surface,
        "model": job.model,
        "endpoint_id": job.endpoint_id,
        "runpod": {"id": job.runpod_id, "status": job.runpod_status},
    }


def _enqueue(surface: surfaces.Surface):
    res, environ = resources(), request.environ  # its headers as `request.headers` reads them
    request_data = load(surface.schema, json_body())
    deadline = deadline_of(request_data, environ.get("HTTP_CANCEL_AFTER"), time.time())
    job = accept(res, caller(), g.request_id, surface, request_data, deadline=deadline)
    wait = preferred_wait(environ.get("HTTP_PREFER"), res.settings.prefer_wait_max)
    if wait:
        wait = res.settings.held(wait)  # under a router's first-byte limit: its 202 comes in time
    finished = None
    if wait:
        try:
            release = hold(wait)
            try:
                finished = res.waiter.wait_for_end(res.jobs, job.id, wait, alive())
            finally:
                release()
        except redis.exceptions.RedisError as error:  # the job is stored: it is answered with its id
            log.warning("job %s: waiting failed (%s); answered 202", job.id, error)
    if finished is not None:
        response = jsonify(res.jobs.shown(finished))
    else:
        response = jsonify(enqueue_answer(job, surface))
        response.status_code = 202
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if wait:
        response.headers["Preference-Applied"] = f"wait={wait:g}"
    return response


def _price(surface: surfaces.Surface):
    """`POST /v1/<route>/price`: the same body as the route, answered with its estimated cost."""
    request_data = load(surface.schema, json_body())
    model = surface.model_for(request_data, resources().settings)
    return jsonify(resources().prices.estimate(surface, model, request_data))


@bp.get("/models")
def models():
    """Every model, with its surface, route, price and whether an endpoint is configured."""
    res = resources()
    data, by_surface = [], {}
    for surface in surfaces.SURFACES.values():
        entries = []
        for model in surface.models:
            entries.append(
                {
                    "id": model,
                    "object": "model",
                    "surface": surface.name,
                    "route": f"/v1{surface.route}",
                    "default": model == surface.default_model,
                    "endpoint_configured": bool(res.settings.endpoint_for(surface.name, model)),
                    "price": {"unit": surface.unit, "unit_price": res.prices.unit_price(surface, model), "currency": "USD"},
                }
            )
        data += entries
        by_surface[surface.name] = {"route": f"/v1{surface.route}", "models": [e["id"] for e in entries]}
    return jsonify({"object": "list", "data": data, "surfaces": by_surface})


for _surface in surfaces.SURFACES.values():
    bp.add_url_rule(
        _surface.route, endpoint=f"enqueue_{_surface.name}", view_func=lambda s=_surface: _enqueue(s), methods=["POST"]
    )
    bp.add_url_rule(
        f"{_surface.route}/price", endpoint=f"price_{_surface.name}", view_func=lambda s=_surface: _price(s), methods=["POST"]
    )
