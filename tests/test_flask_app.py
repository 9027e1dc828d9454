"""podrelay's Flask app class (`integration/api/flask_app.py`): the same answers as Flask's, with less work."""

from __future__ import annotations

import asyncio

import pytest
import redis
from flask import Flask, Response

from integration.api.flask_app import Answer, App
from integration.metrics import METRICS, Metrics


def _sent_headers(response_class, location: str) -> list[tuple[str, str]]:
    response = response_class("{}", status=202, headers={"Location": location, "X-Request-Id": "req_1"})
    return sorted(response.get_wsgi_headers({"SERVER_NAME": "localhost", "SERVER_PORT": "80"}).items())


@pytest.mark.parametrize(
    "location",
    ["/v1/jobs/job_0123abc", "/v1/webhooks/wh_x-y.z~1", "/v1/jobs/ä b", "/v1/jobs/x?a=1&b=ü", "https://example.com/ü"],
)
def test_answers_send_the_location_werkzeug_would(location):
    assert _sent_headers(Answer, location) == _sent_headers(Response, location)


@pytest.mark.parametrize("status", [200, 202, 204, 304, 101])
@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Length", "2")],
        [],
        [("Location", "/v1/jobs/job_1"), ("Content-Length", "2")],
        [("Location", "/v1/jobs/ä"), ("Content-Length", "2")],
        [("Location", "/a"), ("Location", "/b"), ("Content-Length", "2")],
        [("Content-Location", "/v1/jobs/ä b"), ("Content-Length", "2")],
        [("x-ratelimit-limit-requests", "600"), ("Content-Length", "2"), ("ETag", '"x"'), ("Location", "/v1/jobs/j")],
    ],
)
def test_answers_send_the_headers_werkzeug_would_and_leave_their_own_as_they_were(status, headers):
    environ = {"SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    ours, theirs = (cls("{}", status=status, headers=headers) for cls in (Answer, Response))
    # The same names and values; a Location may come last (the order of different names carries no meaning).
    assert sorted(ours.get_wsgi_headers(environ).items()) == sorted(theirs.get_wsgi_headers(environ).items())
    assert sorted(ours.headers.items()) == sorted(theirs.headers.items())


def test_a_plain_location_stays_on_the_response_after_it_is_sent():
    response = Answer("{}", status=202, headers={"Location": "/v1/jobs/job_1"})
    response.get_wsgi_headers({"SERVER_NAME": "localhost", "SERVER_PORT": "80"})
    assert response.headers["Location"] == "/v1/jobs/job_1"


def test_hooks_and_views_run_once_each_and_async_views_are_still_refused_or_run_as_flask_would():
    calls = []
    for cls in (Flask, App):
        app = cls(__name__)

        @app.before_request
        def _before(calls=calls, cls=cls):
            calls.append((cls.__name__, "before"))

        @app.get("/plain")
        def _plain(calls=calls, cls=cls):
            calls.append((cls.__name__, "view"))
            return {"ok": True}

        @app.get("/async")
        async def _async():
            await asyncio.sleep(0)
            return {"ok": "async"}

        client = app.test_client()
        for _ in range(3):
            assert client.get("/plain").get_json() == {"ok": True}
        async_answer = client.get("/async")
        calls.append((cls.__name__, async_answer.status_code))
    by_class = {name: [c for n, *c in calls if n == name] for name in ("Flask", "App")}
    assert by_class["App"] == by_class["Flask"]
    assert by_class["App"].count(["view"]) == 3


def test_a_bound_method_is_asked_each_time_not_kept():
    app = App(__name__)

    class Hooks:
        def hook(self):
            return None

    app.ensure_sync(Hooks().hook)
    app.ensure_sync(Hooks().hook)
    assert app._sync == {}


def test_answered_counts_what_inc_and_observe_count(redis_url):
    conn = redis.Redis.from_url(redis_url, decode_responses=True)
    counted = []
    for seconds in (0.0042, 0.3, 7200.0, None):
        one_step, two_steps = Metrics(conn), Metrics(conn)
        one_step.answered("/v1/chat/completions", "POST", 202, seconds)
        one_step.flush()
        counted.append(conn.hgetall(METRICS))
        conn.delete(METRICS)
        two_steps.inc("podrelay_http_requests_total", route="/v1/chat/completions", method="POST", status="202")
        if seconds is not None:
            two_steps.observe("podrelay_http_request_duration_seconds", seconds, route="/v1/chat/completions")
        two_steps.flush()
        assert conn.hgetall(METRICS) == counted[-1]
        conn.delete(METRICS)
    assert "podrelay_http_request_duration_seconds_bucket|le=+Inf,route=/v1/chat/completions" in counted[2]
    assert all(len(fields) == 1 for fields in counted[3:])
