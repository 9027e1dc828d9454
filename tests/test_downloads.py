"""File results: kept in the blob store, served by key, by signed expiring link, and linked
from job objects and webhook bodies."""

from __future__ import annotations

import base64
import hashlib
import os
import time

import requests
from standardwebhooks.webhooks import Webhook

from integration.accounts.keys import create_key
from integration.files.downloads import DownloadLinks

BIG_PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(30_000)  # over the inline limit once in base64


def image_job(stack, output=None) -> dict:
    body = {"prompt": "a lighthouse", "n": 2}
    if output is not None:
        body["emulate"] = {"output": output}
    job_id = stack.enqueue("/images/generations", body)["id"]
    job = stack.wait_final([job_id])[job_id]
    assert job["status"] == "completed"
    return job


def test_download_serves_each_image_with_its_content_type(make_stack):
    stack = make_stack()
    job = image_job(stack)
    for index in (0, 1):
        answer = stack.http.get(f"{stack.base_url}/v1/jobs/{job['id']}/download", params={"index": index}, timeout=5)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "image/png"
        item = job["result"]["data"][index]
        assert set(item) == {"url", "content_type", "bytes", "sha256"}  # a link to the store, not the bytes
        assert (item["content_type"], item["bytes"]) == ("image/png", len(answer.content))
        assert hashlib.sha256(answer.content).hexdigest() == item["sha256"]
    bad = stack.http.get(f"{stack.base_url}/v1/jobs/{job['id']}/download", params={"index": 2}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "index"
    _, other = create_key(stack.redis, "other")
    foreign = requests.get(
        f"{stack.base_url}/v1/jobs/{job['id']}/download", headers={"Authorization": f"Bearer {other}"}, timeout=5
    )
    assert foreign.status_code == 404


def test_a_job_without_a_file_result_has_nothing_to_download(make_stack):
    stack = make_stack()
    job_id = stack.enqueue("/embeddings", {"input": "x"})["id"]
    stack.wait_final([job_id])
    answer = stack.http.get(f"{stack.base_url}/v1/jobs/{job_id}/download", timeout=5)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "no_file_result"


def test_signed_link_works_without_a_key_and_refuses_tampered_or_expired(make_stack, monkeypatch):
    stack = make_stack()
    job = image_job(stack)
    links = stack.resources.links
    url = links.url(job["id"], 0)
    answer = requests.get(url, timeout=5)  # no Authorization header
    assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG")
    token = url.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    refused = requests.get(url.replace(token, tampered), timeout=5)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "invalid_download_link"
    elsewhere = DownloadLinks("another-secret", 3600, stack.base_url).url(job["id"], 0)
    assert requests.get(elsewhere, timeout=5).status_code == 403
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - stack.settings.result_ttl - 60)
    old = links.url(job["id"], 0)
    monkeypatch.setattr(time, "time", real_time)
    assert requests.get(old, timeout=5).status_code == 403


def test_file_results_are_linked_not_inlined_in_jobs_and_webhooks(make_stack, receivers):
    stack = make_stack()
    hook = receivers()
    small = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nsmall").decode()
    big = base64.b64encode(BIG_PNG).decode()
    body = {"prompt": "x", "webhook_url": hook.url, "emulate": {"output": {"images": [small, big]}}}
    job_id = stack.enqueue("/images/generations", body)["id"]
    stack.wait_final([job_id])
    secret = stack.http.get(f"{stack.base_url}/v1/webhooks/signing-secret", timeout=5).json()["secret"]
    request = hook.wait_for(1)[0]
    assert len(request["body"]) < 8_000  # the 40 KB image is not in it
    event = Webhook(secret).verify(request["body"], request["headers"])
    first, second = event["data"]["result"]["data"]
    assert set(first) == set(second) == {"url", "content_type", "bytes", "sha256"}  # small files are in the store too
    fetched = requests.get(second["url"], timeout=5)  # what a receiver does, without a key
    assert fetched.status_code == 200 and fetched.content == BIG_PNG
    assert fetched.headers["Content-Type"] == "image/png"
    assert requests.get(first["url"], timeout=5).content == b"\x89PNG\r\n\x1a\nsmall"
    shown = stack.job(job_id)["result"]["data"]  # GET /v1/jobs/{id}: the same files, links signed anew
    assert [{**item, "url": None} for item in shown] == [{**item, "url": None} for item in (first, second)]
    assert requests.get(shown[1]["url"], timeout=5).content == BIG_PNG
