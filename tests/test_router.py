"""Behind Heroku's router (a 30 s first-byte limit, `tests/router_proxy.py`), with a 45 s job, every
held answer arrives: OpenAI mode (plain and streamed, through the official SDK), `Prefer: wait`
and `runsync`. The client gets its result or a documented 202 / IN_PROGRESS, never an H12."""

from __future__ import annotations

import threading

import openai
import pytest
import requests

from tests.router_proxy import FirstByteRouter
from tests.support import Stack, make_settings

pytestmark = pytest.mark.stack

JOB_SECONDS = 45.0


def test_every_held_answer_arrives_through_a_thirty_second_router(redis_url, slow_emulator, tmp_path):
    emulator = slow_emulator(JOB_SECONDS)
    settings = make_settings(redis_url, emulator.base_url, public_base_url=None)
    stack = Stack(settings, emulator, tmp_path, procfile=True, DYNO="web.1")  # what Heroku sets
    router = FirstByteRouter(int(stack.base_url.rsplit(":", 1)[1]), first_byte=30.0)
    outcomes: dict[str, object] = {}
    try:
        stack.start_worker()
        sdk = openai.OpenAI(base_url=f"{router.url}/openai/v1", api_key=stack.key, max_retries=0, timeout=180)
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {stack.key}"
        messages = [{"role": "user", "content": "slow"}]

        def chat() -> None:
            outcomes["chat"] = sdk.chat.completions.create(model="m", messages=messages)

        def streamed() -> None:
            outcomes["stream"] = "".join(
                chunk.choices[0].delta.content or ""
                for chunk in sdk.chat.completions.create(model="m", messages=messages, stream=True)
                if chunk.choices
            )

        def prefer_wait() -> None:
            outcomes["prefer"] = http.post(
                f"{router.url}/v1/chat/completions", json={"messages": messages}, headers={"Prefer": "wait=60"}, timeout=180
            )

        def runsync() -> None:
            outcomes["runsync"] = http.post(
                f"{router.url}/v1/runpod/chat/runsync",
                params={"wait": 90000},
                json={"input": {"messages": messages}},
                timeout=180,
            )

        calls = {"chat": chat, "stream": streamed, "prefer": prefer_wait, "runsync": runsync}

        def guarded(name: str) -> None:
            try:
                calls[name]()
            except Exception as error:  # recorded, and reported below with the others
                outcomes[name] = error

        threads = [threading.Thread(target=guarded, args=(name,)) for name in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(240)

        assert router.cut == 0, f"the router cut {router.cut} requests: {outcomes}"
        assert outcomes["chat"].choices[0].message.content == "Echo: slow", outcomes["chat"]
        assert outcomes["stream"] == "Echo: slow", outcomes["stream"]
        prefer = outcomes["prefer"]
        assert prefer.status_code == 202 and prefer.headers["Location"] == f"/v1/jobs/{prefer.json()['id']}", prefer
        assert prefer.headers["Preference-Applied"] == "wait=25"  # shortened to fit under the router
        sync = outcomes["runsync"]
        assert sync.status_code == 200 and sync.json()["status"] in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED"), sync.text
        assert stack.wait_final([prefer.json()["id"]], timeout=120)[prefer.json()["id"]]["status"] == "completed"
    finally:
        router.close()
        stack.close()
