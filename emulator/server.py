"""RunPod's serverless HTTP API over the emulated endpoints (`/v2/{endpoint_id}/...`).

Also `/_emulator/*` for tests and drills: inject faults (`POST /_emulator/faults`), steer
an endpoint's next jobs (`POST /_emulator/steer`), name an endpoint's worker
(`POST /_emulator/workers`), read call counts (`GET /_emulator/stats`), and the files
emulated workers uploaded (`GET /_emulator/files/<name>`). Serve with
`flask --app app emulator`.
"""

from __future__ import annotations

import mimetypes
import time
from collections import deque

from flask import Flask, Response, jsonify, request
from werkzeug.serving import WSGIRequestHandler, make_server

from emulator.state import FINAL, Emulator

RUN_MAX_BYTES = 10 * 1024 * 1024  # runpod/docs operation-reference: /run
RUNSYNC_MAX_BYTES = 20 * 1024 * 1024  # and /runsync


def create_emulator_app(emulator: Emulator | None = None) -> Flask:
    """A Flask app answering like RunPod's serverless API."""
    app = Flask("runpod-emulator")
    state = emulator or Emulator()
    app.extensions["emulator"] = state

    def answer(operation: str, body, status: int = 200):
        state.calls[(operation, status)] += 1
        state.per_second[(operation, int(time.time()))] += 1
        response = jsonify(body)
        response.status_code = status
        return response

    def guard(operation: str):
        """Auth and injected faults, as RunPod would answer them; None to go on."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token or (state.api_key and token != state.api_key):
            return answer(operation, {"error": "Unauthorized"}, 401)
        fault = state.next_fault(operation)
        if fault:
            response = answer(operation, {"error": f"emulated {fault}"}, fault)
            if fault == 429:
                response.headers["Retry-After"] = "1"
            return response
        return None

    def not_found(operation: str):
        return answer(operation, {"error": "request does not exist"}, 404)

    def submit(operation: str, endpoint_id: str):
        refused = guard(operation)
        if refused:
            return refused, None
        limit = RUNSYNC_MAX_BYTES if operation == "runsync" else RUN_MAX_BYTES
        if (request.content_length or 0) > limit:
            return answer(operation, {"error": f"request body exceeds {limit // 1_048_576} MB"}, 413), None
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return answer(operation, {"error": "input is required"}, 400), None
        return None, state.run(endpoint_id, body["input"], body.get("webhook"), sync=operation == "runsync")

    @app.post("/v2/<endpoint_id>/run")
    def run(endpoint_id: str):
        refused, job = submit("run", endpoint_id)
        return refused or answer("run", {"id": job.id, "status": "IN_QUEUE"})

    @app.post("/v2/<endpoint_id>/runsync")
    def runsync(endpoint_id: str):
        refused, job = submit("runsync", endpoint_id)
        if refused:
            return refused
        deadline = time.time() + min(int(request.args.get("wait", 90_000)), 300_000) / 1000
        while time.time() < deadline and state.get(endpoint_id, job.id).status not in FINAL:
            time.sleep(0.01)
        return answer("runsync", state.get(endpoint_id, job.id).payload())

    @app.get("/v2/<endpoint_id>/status/<job_id>")
    def status(endpoint_id: str, job_id: str):
        refused = guard("status")
        if refused:
            return refused
        job = state.get(endpoint_id, job_id)
        return not_found("status") if job is None else answer("status", job.payload())

    @app.get("/v2/<endpoint_id>/stream/<job_id>")
    def stream(endpoint_id: str, job_id: str):
        refused = guard("stream")
        if refused:
            return refused
        job = state.get(endpoint_id, job_id)
        if job is None:
            return not_found("stream")
        return answer("stream", {"status": job.status, "stream": state.stream_chunks(job)})

    def job_action(operation: str, act):
        def view(endpoint_id: str, job_id: str):
            refused = guard(operation)
            if refused:
                return refused
            job = act(endpoint_id, job_id)
            return not_found(operation) if job is None else answer(operation, {"id": job.id, "status": job.status})

        app.add_url_rule(f"/v2/<endpoint_id>/{operation}/<job_id>", operation, view, methods=["POST"])

    job_action("cancel", state.cancel)
    job_action("retry", state.retry)

    @app.post("/v2/<endpoint_id>/purge-queue")
    def purge_queue(endpoint_id: str):
        refused = guard("purge-queue")
        return refused or answer("purge-queue", {"removed": state.purge(endpoint_id), "status": "completed"})

    @app.get("/v2/<endpoint_id>/health")
    def health(endpoint_id: str):
        refused = guard("health")
        return refused or answer("health", state.health(endpoint_id))

    @app.post("/_emulator/faults")
    def faults():
        """`{"run": [429, 503], "status": [503], "rates": {"status": 0.33}}`."""
        body = request.get_json(force=True) or {}
        with state._lock:
            for operation, codes in body.items():
                if operation == "rates":
                    state.fault_rates = {k: float(v) for k, v in codes.items()}
                else:
                    state.faults[operation] = deque(int(c) for c in codes)
        return jsonify({"ok": True})

    @app.post("/_emulator/steer")
    def steer():
        """`{"endpoint_id", "controls": {...}, "count": 1}`: the endpoint's next jobs behave so."""
        body = request.get_json(force=True) or {}
        state.steer(body["endpoint_id"], body.get("controls") or {}, int(body.get("count", 1)))
        return jsonify({"ok": True})

    @app.post("/_emulator/workers")
    def workers():
        """`{"<endpoint id>": "worker-vllm@2.24", ...}`: the workers behind endpoints."""
        body = request.get_json(force=True) or {}
        with state._lock:
            state.workers.update({str(k): str(v) for k, v in body.items()})
        return jsonify({"ok": True, "workers": state.workers})

    @app.get("/_emulator/files/<name>")
    def uploaded(name: str):
        data = state.files.get(name)
        if data is None:
            return jsonify({"error": "no such file"}), 404
        return Response(data, mimetype=mimetypes.guess_type(name)[0] or "application/octet-stream")

    @app.get("/_emulator/stats")
    def stats():
        calls: dict[str, dict[str, int]] = {}
        for (operation, code), count in list(state.calls.items()):
            calls.setdefault(operation, {})[str(code)] = count
        busiest: dict[str, int] = {}  # the most calls of an operation in any 10 consecutive seconds
        for (operation, second), _ in list(state.per_second.items()):
            window = sum(state.per_second.get((operation, second + k), 0) for k in range(10))
            busiest[operation] = max(busiest.get(operation, 0), window)
        return jsonify(
            {
                "calls": calls,
                "max_per_10s": busiest,
                "jobs": len(state.jobs),
                "callbacks_sent": state.callbacks_sent,
                "callbacks_failed": state.callbacks_failed,
            }
        )

    return app


class _KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"  # keep connections open, as RunPod's API does

    def log_request(self, *args, **kwargs):  # quiet: thousands of calls per run
        pass


def make_emulator_server(host: str = "127.0.0.1", port: int = 0, emulator: Emulator | None = None):
    """A threaded HTTP server for the emulator; `.server_port` tells the port."""
    return make_server(host, port, create_emulator_app(emulator), threaded=True, request_handler=_KeepAliveHandler)


def serve(host: str, port: int, emulator: Emulator | None = None) -> None:
    """Serve until interrupted."""
    emulator = emulator or Emulator()
    server = make_emulator_server(host, port, emulator)
    emulator.base_url = f"http://{host}:{server.server_port}"
    print(f"RunPod emulator on http://{host}:{server.server_port}/v2", flush=True)
    server.serve_forever()
