"""The console in a real browser: Playwright driving Debian's chromium (launched from its path;
no browser download), against a live podrelay and the emulator."""

from __future__ import annotations

import os
import shutil

import pytest
import requests

from tests.support import wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What a browser on this machine needs: no sandbox as root, and no calls home (the network is closed).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip
XSS = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 1">'


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Debian's chromium is not at {CHROMIUM}: scripts/test installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def sign_in(page, stack) -> None:
    page.goto(f"{stack.base_url}/console/")
    assert page.url.endswith("/console/login")
    page.fill("#key", stack.key)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/jobs")


def test_sign_in_watch_a_job_complete_see_its_image_and_sign_out(make_stack, slow_emulator, browser):
    stack = make_stack(runpod_api_base=f"{slow_emulator(3.0).base_url}/v2")
    page = browser.new_page()
    page.goto(f"{stack.base_url}/console/login")
    page.fill("#key", "pr_not-a-key")
    page.click("button[type=submit]")
    assert "not a live API key" in page.inner_text("main")
    sign_in(page, stack)
    assert stack.key not in str(page.context.cookies()) and page.evaluate("localStorage.length") == 0
    job_id = stack.enqueue("/chat/completions", {"messages": [{"role": "user", "content": "live please"}]})["id"]
    page.goto(f"{stack.base_url}/console/jobs/{job_id}")
    assert page.inner_text("#status") in ("queued", "submitted", "running")
    page.wait_for_selector("#answer", timeout=60_000)  # the stream said completed, and the page shows the result
    assert page.inner_text("#status") == "completed" and page.inner_text("#answer") == "Echo: live please"

    image_job = stack.enqueue("/images/generations", {"prompt": "a lighthouse", "size": "256x256"})["id"]
    stack.wait_final([image_job], timeout=60)
    page.goto(f"{stack.base_url}/console/jobs/{image_job}")
    image = page.locator("figure img").first
    wait_until(lambda: image.evaluate("i => i.complete && i.naturalWidth > 0"), timeout=30, message="the image did not load")
    page.goto(f"{stack.base_url}/console/jobs?surface=images")
    assert image_job in page.inner_text("table") and job_id not in page.inner_text("table")

    page.click("text=Sign out")
    page.wait_for_url("**/console/login")
    page.goto(f"{stack.base_url}/console/jobs")
    assert page.url.endswith("/console/login")


def test_create_a_subscription_see_its_failed_delivery_and_redeliver_it(make_stack, browser, receivers):
    stack = make_stack()
    receiver = receivers(plan=[(500, {}, 0, XSS.encode())] * 4)  # fails every attempt, answering with markup
    page = browser.new_page()
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/console/webhooks")
    page.fill("#url", receiver.url)
    page.fill("#description", XSS)
    page.click("form:has(#url) button[type=submit]")
    page.wait_for_url("**/console/webhooks/we_*")
    assert page.inner_text("#secret").startswith("whsec_")
    stack.wait_final([stack.enqueue("/embeddings", {"input": "x"})["id"]], timeout=60)
    receiver.wait_for(4, timeout=60)
    wait_until(lambda: page.reload() or "dead" in page.inner_text("table"), timeout=60, message="no dead delivery shown")
    assert XSS in page.inner_text("main")  # the receiver's answer and the description, shown as text
    assert page.evaluate("window.__pwned") is None
    page.click("tr.delivery-dead button:has-text('Redeliver')")
    assert len(receiver.wait_for(5, timeout=60)) == 5  # sent again (and answered 204 this time)
    page.click("button[value=test]")
    assert len(receiver.wait_for(6, timeout=60)) == 6


def test_an_xss_payload_in_a_jobs_output_is_shown_as_text(make_stack, browser):
    stack = make_stack()
    completion = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": XSS}}]}
    body = {"messages": [{"role": "user", "content": "x"}], "emulate": {"output": completion}}
    job_id = stack.enqueue("/chat/completions", body)["id"]
    stack.wait_final([job_id], timeout=60)
    page = browser.new_page()
    sign_in(page, stack)
    page.goto(f"{stack.base_url}/console/jobs/{job_id}")
    assert page.inner_text("#answer") == XSS
    assert page.evaluate("window.__pwned") is None
    assert "script-src 'self'" in requests.get(f"{stack.base_url}/console/login", timeout=10).headers["Content-Security-Policy"]


def test_forms_need_the_sessions_csrf_token_and_admin_pages_an_admin(make_stack):
    from integration.accounts.keys import create_key

    stack = make_stack()
    session = requests.Session()
    page = session.get(f"{stack.base_url}/console/login", timeout=10).text
    token = page.split('name="csrf" value="')[1].split('"')[0]
    assert session.post(f"{stack.base_url}/console/login", data={"key": stack.key}, timeout=10).status_code == 403
    signed = session.post(f"{stack.base_url}/console/login", data={"key": stack.key, "csrf": token}, timeout=10)
    assert signed.status_code == 200 and signed.url.endswith("/console/jobs")
    forged = session.post(
        f"{stack.base_url}/console/webhooks", data={"url": "https://example.com/x", "csrf": "guess"}, timeout=10
    )
    assert forged.status_code == 403
    assert session.get(f"{stack.base_url}/console/admin", timeout=10).status_code == 403
    _, admin = create_key(stack.redis, "console-admin", admin=True)
    other = requests.Session()
    token = other.get(f"{stack.base_url}/console/login", timeout=10).text.split('name="csrf" value="')[1].split('"')[0]
    other.post(f"{stack.base_url}/console/login", data={"key": admin, "csrf": token}, timeout=10)
    installation = other.get(f"{stack.base_url}/console/admin", timeout=10)
    assert installation.status_code == 200 and "podrelay_jobs_unfinished" in installation.text
    usage = session.get(f"{stack.base_url}/console/usage", timeout=10)
    assert usage.status_code == 200 and "Usage in" in usage.text
