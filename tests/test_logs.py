"""JSON logs: one request id follows a job from its HTTP request through the worker to its deliveries."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

from integration.logs import JsonFormatter
from tests.support import wait_until

ROOT = Path(__file__).resolve().parent.parent

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_request_id_follows_the_job_into_the_worker_and_its_deliveries(make_stack, receivers, tmp_path):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level, root.level = root.level, logging.INFO
    try:
        stack = make_stack()
        hook = receivers()
        answer = stack.http.post(
            f"{stack.base_url}/v1/chat/completions",
            json={**CHAT, "webhook_url": hook.url},
            headers={"X-Request-Id": "req-trace-42"},
            timeout=5,
        )
        job_id = answer.json()["id"]
        stack.wait_final([job_id])
        hook.wait_for(1)
        wait_until(lambda: "delivery of job.completed" in (tmp_path / "worker-0.log").read_text(), every=0.1)
    finally:
        root.removeHandler(handler)
        root.level = old_level

    web = [line for line in json_lines(stream.getvalue()) if line.get("request_id") == "req-trace-42"]
    assert any(line["message"] == "POST /v1/chat/completions -> 202" for line in web), web
    assert {"time", "level", "logger", "message"} <= set(web[0])

    worker = [line for line in json_lines((tmp_path / "worker-0.log").read_text()) if line.get("request_id") == "req-trace-42"]
    messages = [line["message"] for line in worker]
    assert any(m.startswith("job queued -> submitted (RunPod ") for m in messages), messages
    assert any(m.endswith("-> completed") for m in messages), messages
    delivery = [line for line in worker if line["message"].startswith("delivery of job.completed to 127.0.0.1, attempt 1: 204")]
    assert delivery, messages
    assert all(line["job_id"] == job_id for line in worker)
    assert delivery[0]["delivery_id"].startswith("dlv_")
    assert stack.http.get(f"{stack.base_url}/v1/webhooks/deliveries", timeout=5).json()["data"][0]["job_id"] == job_id


def test_gunicorns_own_text_lines_still_format_once_podrelay_configured_logging():
    """gunicorn's text format shows the process id; podrelay's configuration must leave records one."""
    script = (
        "import logging, os\n"
        "from integration import logs\n"
        "logs.configure('INFO')\n"
        "record = logging.LogRecord('gunicorn.error', logging.INFO, 'gunicorn', 1, 'Worker exiting (pid: %s)', (7,), None)\n"
        "print(logging.Formatter('%(asctime)s [%(process)d] [%(levelname)s] %(message)s').format(record))\n"
        "print(os.getpid())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    line, pid = done.stdout.splitlines()
    assert f"[{pid}] [INFO] Worker exiting (pid: 7)" in line
