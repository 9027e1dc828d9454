"""Request hygiene: media types, sizes, bounds, https-only media, and logs that cannot be forged or leak."""

from __future__ import annotations

import io
import logging
import re

import pytest

from integration.logs import SafeFormatter
from integration.resources import of
from tests.support import EMULATOR_KEY

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


@pytest.fixture
def log_output(app):
    """Everything logged while the test runs, through podrelay's formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    settings = of(app).settings
    handler.setFormatter(
        SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", (settings.runpod_api_key, settings.secret_key))
    )
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.mark.parametrize(
    "route,body,content_type",
    [
        ("/v1/chat/completions", "messages=hi", "application/x-www-form-urlencoded"),
        ("/v1/webhooks", '{"url": "https://a.example"}', "text/plain"),
        ("/v1/runpod/chat/run", '{"input": {}}', "multipart/form-data; boundary=x"),
        ("/openai/v1/embeddings", '{"input": "x"}', None),
    ],
)
def test_json_routes_refuse_other_media_types_with_415(client, auth, route, body, content_type):
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    answer = client.post(route, data=body, headers=headers)
    assert answer.status_code == 415
    assert answer.get_json()["error"]["code"] == "unsupported_media_type"


def test_body_over_the_limit_is_413_before_anything_else_happens(client, auth):
    big = b'{"messages": [{"role": "user", "content": "' + b"x" * (1024 * 1024) + b'"}]}'
    answer = client.post("/v1/chat/completions", data=big, headers={**auth, "Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.get_json()["error"]["code"] == "request_too_large"
    assert client.get("/v1/jobs", headers=auth).get_json()["data"] == []


@pytest.mark.parametrize(
    "route,body,param",
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}] * 2049}, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text"}] * 2049}]}, "messages[0].content"),
        ("/v1/chat/completions", {**CHAT, "user": "u" * 257}, "user"),
        ("/v1/chat/completions", {**CHAT, "model": "m" * 201}, "model"),
        ("/v1/embeddings", {"input": ["x"] * 2049}, "input"),
        ("/v1/audio/speech", {"input": "x" * 20_001}, "input"),
        ("/v1/audio/transcriptions", {"audioUrl": "http://files.example.com/a.mp3"}, "audioUrl"),
        ("/v1/audio/transcriptions", {"audioUrl": "data:audio/mp3;base64,AA!A"}, "audioUrl"),  # broken base64
        ("/v1/images/upscale", {"image": "http://files.example.com/a.png"}, "image"),
        ("/v1/images/edits", {"image": "https://" + "a" * 64 + ".example.com/x.png", "prompt": "p"}, "image"),
        ("/v1/videos/audio-to-video", {"audioUrl": "ftp://files.example.com/a.mp3"}, "audioUrl"),
        ("/v1/chat/completions", {**CHAT, "webhook_url": "https://" + "0" * 300 + "/hook"}, "webhook_url"),
    ],
)
def test_unbounded_or_unsafe_values_are_400_naming_the_field(client, auth, route, body, param):
    answer = client.post(route, json=body, headers=auth)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"]["param"] == param


def test_https_and_data_uri_media_are_accepted(client, auth):
    assert (
        client.post("/v1/audio/transcriptions", json={"audioUrl": "https://files.example.com/a.mp3"}, headers=auth).status_code
        == 202
    )
    assert (
        client.post("/v1/images/upscale", json={"image": "data:image/png;base64,iVBORw0KGgo="}, headers=auth).status_code == 202
    )


def test_request_values_cannot_forge_log_lines(client, auth, log_output):
    client.get("/v1/jobs/abc%0D%0A2026-01-01 00:00:00,000 INFO forged: admin logged in", headers=auth)
    client.get("/v1/jobs?status=%1b[31mred%0aFORGED", headers={**auth, "X-Request-Id": "bad\x1bid"})
    client.post("/v1/chat/completions?x=%0aFORGED2", json=CHAT, headers=auth)
    text = log_output.getvalue()
    assert "abc\\r\\n2026-01-01" in text  # the value is there, escaped, inside its own line
    for line in text.splitlines():
        assert LINE_START.match(line), line
    assert "\x1b" not in text


def test_api_keys_and_secrets_never_reach_the_logs(client, auth, api_key, app, log_output):
    client.get(f"/v1/jobs?api_key={api_key}", headers=auth)
    client.get("/v1/jobs", headers={"Authorization": f"Bearer {api_key}x"})  # a wrong key, close to the real one
    logging.getLogger("integration.test").warning("calling RunPod with %s and secret %s", EMULATOR_KEY, "test-secret")
    logging.getLogger("integration.test").warning("header was Authorization: Bearer %s", api_key)
    text = log_output.getvalue()
    assert "/v1/jobs?api_key=[redacted]" in text
    for secret in (api_key, api_key[:20], EMULATOR_KEY, "test-secret"):
        assert secret not in text
