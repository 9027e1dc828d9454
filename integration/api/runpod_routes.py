"""RunPod direct routes (seed 002): `/v1/runpod/{surface}/run`, `/runsync`, `/status/{id}`,
`/stream/{id}`, `/cancel/{id}`, `/retry/{id}`, `/purge-queue`, `/health`.

Ids are RunPod's. `?endpoint_id=` overrides the routing of `run`, `runsync`,
`purge-queue` and `health`; the other routes use the endpoint the job ran on.
"""

from __future__ import annotations

import re

from flask import Blueprint, g, jsonify, request

from integration.api.admission import admit
from integration.api.context import caller, hold, json_body, resources
from integration.errors import validation_error
from integration.runpod.direct import DirectRunSchema, RunPodDirect
from integration.surfaces.fields import load
from integration.webhooks.outbound import check_target

bp = Blueprint("runpod", __name__)
bp.before_request(admit)


_run_schema = DirectRunSchema()


def _direct() -> RunPodDirect:
    return RunPodDirect(resources())


def _submit(surface_name: str, wait_ms: int | None):
    direct = _direct()
    surface, endpoint_id = direct.endpoint(surface_name, request.args.get("endpoint_id"), caller())
    body = load(_run_schema, json_body())
    for name in ("webhook_url", "webhook"):
        if name in body:
            check_target(body[name], direct.res.settings.webhook_allow_private, name)
    return jsonify(direct.run(caller(), surface, endpoint_id, body, g.request_id, wait_ms))


@bp.post("/runpod/<surface>/run")
def run(surface: str):
    """`POST /v1/runpod/{surface}/run`."""
    return _submit(surface, None)


@bp.post("/runpod/<surface>/runsync")
def runsync(surface: str):
    """`POST /v1/runpod/{surface}/runsync?wait=ms`."""
    try:
        wait_ms = int(request.args.get("wait", "90000"))
    except ValueError:
        wait_ms = -1
    if not 1000 <= wait_ms <= 300_000:
        raise validation_error("Invalid value for 'wait': milliseconds from 1000 to 300000.", "wait")
    wait_ms = int(resources().settings.held(wait_ms / 1000) * 1000)  # under a router: RunPod's own IN_PROGRESS in time
    release = hold(wait_ms / 1000 + 30)
    try:
        return _submit(surface, wait_ms)
    finally:
        release()


def _job_route(operation: str):
    def view(surface: str, runpod_id: str):
        direct = _direct()
        direct.surface(surface)
        return jsonify(getattr(direct, operation)(direct.owned(g.key_id, runpod_id)))

    return view


for _operation, _method in (("status", "GET"), ("cancel", "POST"), ("retry", "POST")):
    bp.add_url_rule(
        f"/runpod/<surface>/{_operation}/<runpod_id>", f"runpod_{_operation}", _job_route(_operation), methods=[_method]
    )


_EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@bp.get("/runpod/<surface>/stream/<runpod_id>")
def runpod_stream(surface: str, runpod_id: str):
    """`GET /v1/runpod/{surface}/stream/{id}`: the pieces this reader has not had yet.

    A reader's place is `?after=<id>` or a cookie (which RunPod's SDK keeps in its session),
    so every reader gets every piece; a reader with neither gets RunPod's own semantics
    (each piece once, to whoever asks first)."""
    direct = _direct()
    direct.surface(surface)
    job = direct.owned(g.key_id, runpod_id)
    cookie = f"pr_stream_{job.id}"
    after = request.args.get("after") or request.cookies.get(cookie)
    if after is not None and not _EVENT_ID.match(after):
        raise validation_error("Invalid value for 'after': a piece id such as 1764633600000-0.", "after")
    answer, cursor = direct.stream(job, after)
    response = jsonify(answer)
    if cursor:
        response.headers["X-Stream-Cursor"] = cursor
        response.set_cookie(cookie, cursor, max_age=direct.res.settings.result_ttl, path="/v1/runpod/", httponly=True)
    return response


@bp.post("/runpod/<surface>/purge-queue")
def purge_queue(surface: str):
    """`POST /v1/runpod/{surface}/purge-queue`."""
    direct = _direct()
    return jsonify(direct.purge_queue(direct.endpoint(surface, request.args.get("endpoint_id"), caller())[1], caller()))


@bp.get("/runpod/<surface>/health")
def health(surface: str):
    """`GET /v1/runpod/{surface}/health`."""
    direct = _direct()
    return jsonify(direct.health(direct.endpoint(surface, request.args.get("endpoint_id"), caller())[1], caller()))
