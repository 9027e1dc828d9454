"""A job's events over Server-Sent Events (with Last-Event-ID reconnect) and WebSocket."""

from __future__ import annotations

import contextlib
import json

import requests
import simple_websocket

from integration.accounts.keys import create_key

SLOW_CHAT = {"messages": [{"role": "user", "content": "one two three four five six"}], "emulate": {"delay": 1.0}}


def read_sse(response, stop_after: int | None = None) -> list[dict]:
    """Parse an event stream into [{"id", "event", "data"}], stopping after `stop_after` events."""
    events, current = [], {}
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if "event" in current:
                events.append(current)
                if stop_after and len(events) >= stop_after:
                    break
            current = {}
        elif not line.startswith(":") and ": " in line:
            field, value = line.split(": ", 1)
            current[field] = json.loads(value) if field == "data" else value
    response.close()
    return events


def read_ws(stack, job_id: str) -> list[dict]:
    """A job's WebSocket messages, up to and with the final `job` one."""
    ws_url = stack.base_url.replace("http://", "ws://") + f"/v1/jobs/{job_id}/ws"
    ws = simple_websocket.Client.connect(ws_url, headers={"Authorization": f"Bearer {stack.key}"})
    messages = []
    try:
        while True:
            messages.append(json.loads(ws.receive(timeout=15)))
            if messages[-1]["event"] == "job":
                break
    except simple_websocket.ConnectionClosed:
        pass
    finally:
        if ws.connected:
            with contextlib.suppress(OSError):  # the server ends the socket after the last event: a race
                ws.close()
    return messages


def test_sse_streams_every_change_then_the_final_job(make_stack):
    stack = make_stack(callbacks=False)  # polling sees the job running; RunPod calls back only at the end
    job_id = stack.enqueue("/chat/completions", SLOW_CHAT)["id"]
    response = stack.http.get(f"{stack.base_url}/v1/jobs/{job_id}/events", stream=True, timeout=20)
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = read_sse(response)
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses == ["submitted", "running", "completed"]
    assert all(e.get("id") for e in events if e["event"] == "status")
    assert events[-1]["event"] == "job" and events[-1]["data"]["status"] == "completed"
    assert events[-1]["data"]["result"]["object"] == "chat.completion"


def test_sse_reconnect_with_last_event_id_resumes_after_it(make_stack):
    stack = make_stack(callbacks=False)  # polling sees the job running; RunPod calls back only at the end
    job_id = stack.enqueue("/chat/completions", SLOW_CHAT)["id"]
    url = f"{stack.base_url}/v1/jobs/{job_id}/events"
    first = read_sse(stack.http.get(url, stream=True, timeout=20), stop_after=1)[0]
    assert first["data"]["status"] == "submitted"
    resumed = read_sse(stack.http.get(url, headers={"Last-Event-ID": first["id"]}, stream=True, timeout=20))
    statuses = [e["data"]["status"] for e in resumed if e["event"] == "status"]
    assert statuses == ["running", "completed"]  # nothing twice, nothing missed
    assert all(e["id"] > first["id"] for e in resumed if e.get("id"))


def test_sse_of_a_streaming_job_carries_its_output_pieces(make_stack):
    stack = make_stack()
    job_id = stack.enqueue("/chat/completions", {**SLOW_CHAT, "stream": True})["id"]
    events = read_sse(stack.http.get(f"{stack.base_url}/v1/jobs/{job_id}/events", stream=True, timeout=20))
    text = "".join(e["data"]["text"] for e in events if e["event"] == "chunk")
    assert text == "Echo: one two three four five six"
    assert len([e for e in events if e["event"] == "chunk"]) >= 3


def test_sse_of_a_finished_job_replays_and_ends(make_stack):
    stack = make_stack()
    job_id = stack.enqueue("/embeddings", {"input": "x"})["id"]
    stack.wait_final([job_id])
    events = read_sse(stack.http.get(f"{stack.base_url}/v1/jobs/{job_id}/events", stream=True, timeout=10))
    assert [e["event"] for e in events][-1] == "job"
    assert "completed" in [e["data"].get("status") for e in events if e["event"] == "status"]


def test_websocket_streams_the_same_events(make_stack):
    stack = make_stack(callbacks=False)  # polling sees the job running; RunPod calls back only at the end
    job_id = stack.enqueue("/chat/completions", SLOW_CHAT)["id"]
    messages = read_ws(stack, job_id)
    assert [m["data"]["status"] for m in messages if m["event"] == "status"] == ["submitted", "running", "completed"]
    assert messages[-1]["event"] == "job" and messages[-1]["data"]["id"] == job_id


def test_event_streams_need_the_owning_key(make_stack):
    stack = make_stack()
    job_id = stack.enqueue("/embeddings", {"input": "x"})["id"]
    url = f"{stack.base_url}/v1/jobs/{job_id}/events"
    assert requests.get(url, timeout=5).status_code == 401
    _, other = create_key(stack.redis, "other")
    assert requests.get(url, headers={"Authorization": f"Bearer {other}"}, timeout=5).status_code == 404
    ws_url = stack.base_url.replace("http://", "ws://") + f"/v1/jobs/{job_id}/ws"
    try:
        simple_websocket.Client.connect(ws_url, headers={"Authorization": f"Bearer {other}"}).receive(timeout=5)
        refused = False
    except (simple_websocket.ConnectionError, simple_websocket.ConnectionClosed):
        refused = True
    assert refused


def test_progress_reports_reach_sse_the_job_and_the_subscribers_that_ask_for_them(make_stack, receivers):
    from standardwebhooks import Webhook

    stack = make_stack()
    asked, default = receivers(), receivers()
    subscriptions = []
    for receiver, events in ((asked, ["job.progress", "job.completed"]), (default, None)):
        body = {"url": receiver.url, **({"events": events} if events else {})}
        subscriptions.append(stack.http.post(f"{stack.base_url}/v1/webhooks", json=body, timeout=10).json())
    reports = [{"step": 1, "of": 3}, {"step": 2, "of": 3}, {"step": 3, "of": 3}]
    own = receivers()
    body = {
        "messages": [{"role": "user", "content": "slowly"}],
        "emulate": {"progress": reports, "delay": 6},  # the worker calls progress_update three times
        "webhook_url": own.url,
        "webhook_events": ["job.progress", "job.completed"],  # asked: polled as often as without callbacks
    }
    job_id = stack.enqueue("/chat/completions", body)["id"]
    response = stack.http.get(f"{stack.base_url}/v1/jobs/{job_id}/events", stream=True, timeout=60)
    events = read_sse(response)
    seen = [e["data"]["progress"] for e in events if e["event"] == "progress"]
    assert seen and all(report in reports for report in seen) and seen == sorted(seen, key=reports.index)
    assert events[-1]["event"] == "job" and events[-1]["data"]["progress"] == seen[-1]  # kept on the job
    delivered = asked.wait_for(len(seen) + 1, timeout=30)
    verified = [Webhook(subscriptions[0]["secret"]).verify(r["body"], r["headers"]) for r in delivered]
    assert [v["type"] for v in verified] == ["job.progress"] * len(seen) + ["job.completed"]
    assert [v["data"]["progress"] for v in verified[:-1]] == seen
    assert len(own.wait_for(len(seen) + 1, timeout=30)) == len(seen) + 1  # the request's own webhook_url asked too
    plain = default.wait_for(2, timeout=30)  # started and completed: no progress unless asked for
    types = [json.loads(r["body"])["type"] for r in plain]
    assert "job.progress" not in types and "job.completed" in types
