"""RunPod direct routes (seed 002): `/v1/runpod/{surface}/run`, `/runsync`, `/status/{id}`,
`/stream/{id}`, `/cancel/{id}`, `/retry/{id}`, `/purge-queue`, `/health`.

Ids are RunPod's. `?endpoint_id=` overrides the routing of `run`, `runsync`,
`purge-queue` and `health`; the other routes use the endpoint the job ran on.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from integration.api.admission import admit
from integration.api.context import caller, json_body, resources
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
    surface, endpoint_id = direct.endpoint(surface_name, request.args.get("endpoint_id"))
    body = load(_run_schema, json_body())
    if "webhook_url" in body:
        check_target(body["webhook_url"], direct.res.settings.webhook_allow_private, "webhook_url")
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
    return _submit(surface, wait_ms)


def _job_route(operation: str):
    def view(surface: str, runpod_id: str):
        direct = _direct()
        direct.surface(surface)
        return jsonify(getattr(direct, operation)(direct.owned(g.key_id, runpod_id)))

    return view


for _operation, _method in (("status", "GET"), ("stream", "GET"), ("cancel", "POST"), ("retry", "POST")):
    bp.add_url_rule(
        f"/runpod/<surface>/{_operation}/<runpod_id>", f"runpod_{_operation}", _job_route(_operation), methods=[_method]
    )


@bp.post("/runpod/<surface>/purge-queue")
def purge_queue(surface: str):
    """`POST /v1/runpod/{surface}/purge-queue`."""
    direct = _direct()
    return jsonify(direct.purge_queue(direct.endpoint(surface, request.args.get("endpoint_id"))[1]))


@bp.get("/runpod/<surface>/health")
def health(surface: str):
    """`GET /v1/runpod/{surface}/health`."""
    direct = _direct()
    return jsonify(direct.health(direct.endpoint(surface, request.args.get("endpoint_id"))[1]))
