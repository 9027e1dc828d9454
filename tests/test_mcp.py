"""The MCP server with the SDK's own client (`mcp.Client`), over streamable HTTP at `/mcp` and
over stdio (`flask --app app mcp`), against a live podrelay and the emulator."""

from __future__ import annotations

import base64
import os
import signal
import sys

import anyio
import httpx2
import pytest
import requests
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from integration import surfaces
from integration.accounts.keys import create_key, set_limits
from integration.mcp import tools
from tests.support import ROOT, wait_until

CHAT = {"messages": [{"role": "user", "content": "Hello from an agent"}]}


def run(coroutine_function, *args):
    return anyio.run(coroutine_function, *args)


async def _session(stack, key: str, use, mode: str):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
        async with Client(streamable_http_client(f"{stack.base_url}/mcp", http_client=http), mode=mode) as client:
            return await use(client)


def over_http(stack, use, key: str | None = None, mode: str = "auto"):
    """`use(client)` in an MCP session with podrelay's `/mcp`, as `key` (the stack's by default)."""
    return run(_session, stack, key or stack.key, use, mode)


def text_of(result) -> str:
    return "\n".join(part.text for part in result.content if part.type == "text")


def test_tools_are_every_surface_and_the_job_tools_with_the_openapi_schemas(make_stack):
    stack = make_stack()
    document = requests.get(f"{stack.base_url}/openapi.json", timeout=30).json()

    async def use(client):
        assert client.protocol_version == "2026-07-28"  # the current protocol: every Mcp-* header got through
        assert client.server_info.name == "podrelay"
        return (await client.list_tools()).tools

    listed = {tool.name: tool for tool in over_http(stack, use)}
    assert set(surfaces.SURFACES) | {"job_get", "job_list", "job_cancel", "job_wait", "price"} == set(listed)
    for surface in surfaces.SURFACES.values():  # drift: the schema the route validates with, as OpenAPI shows it
        assert listed[surface.name].input_schema == tools.request_schema(document, surface.route), surface.name
        assert "$ref" not in str(listed[surface.name].input_schema)
    assert listed["chat"].input_schema["required"] == ["messages"]
    assert set(listed["job_list"].input_schema["properties"]) == {"limit", "cursor", "status", "surface"}


def test_chat_images_and_the_job_tools_and_resources(make_stack):
    stack = make_stack()

    async def use(client):
        chat = await client.call_tool("chat", CHAT)
        images = await client.call_tool("images", {"prompt": "a lighthouse", "n": 2, "size": "256x256"})
        job_id = chat.structured_content["id"]
        got = await client.call_tool("job_get", {"id": job_id})
        listed = await client.call_tool("job_list", {"surface": "chat"})
        price = await client.call_tool("price", {"surface": "chat", "request": CHAT})
        resources = await client.list_resources()
        read = await client.read_resource(f"podrelay://jobs/{job_id}")
        models = await client.read_resource("podrelay://models")
        return chat, images, got, listed, price, resources, read, models

    chat, images, got, listed, price, resources, read, models = over_http(stack, use)
    assert not chat.is_error and "Echo: Hello from an agent" in text_of(chat)
    assert chat.structured_content["status"] == "completed"
    pictures = [part for part in images.content if part.type == "image"]
    assert len(pictures) == 2 and all(p.mime_type == "image/png" for p in pictures)
    assert base64.b64decode(pictures[0].data).startswith(b"\x89PNG")
    assert got.structured_content["id"] == chat.structured_content["id"] and not got.is_error
    assert [job["id"] for job in listed.structured_content["data"]] == [chat.structured_content["id"]]
    assert price.structured_content["estimated_cost"] > 0
    uris = {str(r.uri) for r in resources.resources}
    assert "podrelay://models" in uris and f"podrelay://jobs/{chat.structured_content['id']}" in uris
    assert '"status": "completed"' in read.contents[0].text
    assert "chat" in models.contents[0].text
    assert stack.job(chat.structured_content["id"])["surface"] == "chat"  # a job like any other


def test_a_client_of_the_previous_protocol_initializes_and_calls_tools_statelessly(make_stack):
    stack = make_stack()

    async def use(client):
        assert client.protocol_version < "2026-07-28"  # the initialize handshake of 2025-11-25 and before
        tools_listed = {tool.name for tool in (await client.list_tools()).tools}
        return tools_listed, await client.call_tool("chat", CHAT)

    listed, chat = over_http(stack, use, mode="legacy")
    assert "chat" in listed and "Echo: Hello from an agent" in text_of(chat)


def test_audio_comes_back_as_audio_content_and_video_as_a_link_to_its_download(make_stack):
    stack = make_stack()

    async def use(client):
        speech = await client.call_tool("speech", {"input": "Hello from an agent", "voice": "af_bella"})
        video = await client.call_tool("video", {"prompt": "waves at dusk", "duration": 2})
        return speech, video

    speech, video = over_http(stack, use)
    [audio] = [part for part in speech.content if part.type == "audio"]
    assert audio.mime_type == "audio/wav" and base64.b64decode(audio.data).startswith(b"RIFF")
    [link] = [part for part in video.content if part.type == "resource_link"]
    assert link.mime_type == "video/mp4" and link.size > 0
    downloaded = stack.http.get(str(link.uri), timeout=30)
    assert downloaded.status_code == 200 and downloaded.headers["Content-Type"].startswith("video/mp4")


def test_a_slow_job_reports_progress_and_answers_its_id_when_the_wait_ends_first(make_stack, slow_emulator):
    stack = make_stack(runpod_api_base=f"{slow_emulator(6.0).base_url}/v2", mcp_tool_wait=2.0)
    seen: dict[str, list[tuple]] = {"chat": [], "job_wait": []}

    def recorder(name: str):
        async def progress(done, total, message):
            seen[name].append((done, total, message))

        return progress

    async def use(client):
        first = await client.call_tool("chat", CHAT, progress_callback=recorder("chat"))
        job_id = first.structured_content["id"]
        waited = await client.call_tool("job_wait", {"id": job_id, "timeout": 120}, progress_callback=recorder("job_wait"))
        return first, waited

    first, waited = over_http(stack, use)
    job_id = first.structured_content["id"]
    assert not first.is_error and first.structured_content["status"] in ("queued", "submitted", "running")
    assert "job_wait" in text_of(first) and job_id in text_of(first)  # the wait ended first: its id, to go on
    assert waited.structured_content["status"] == "completed" and "Echo: Hello from an agent" in text_of(waited)
    assert seen["chat"] and len(seen["job_wait"]) >= 2  # every couple of seconds while it waited
    for reports in seen.values():
        assert [done for done, _, _ in reports] == sorted({done for done, _, _ in reports})  # strictly increasing
        assert all(job_id in message for _, _, message in reports)
    assert seen["job_wait"][0][1] == 120


def test_refusals_are_tool_errors_naming_why(make_stack):
    stack = make_stack()
    key_id, key = create_key(stack.redis, "tight")
    set_limits(stack.redis, key_id.id, budget="0.0000001")

    async def use(client):
        wrong = await client.call_tool("chat", {"messages": "not a list"})
        unknown = await client.call_tool("job_get", {"id": "job_nothere"})
        other = await client.call_tool("job_wait", {"id": "job_x", "timeout": 100000})
        return wrong, unknown, other

    wrong, unknown, other = over_http(stack, use)
    assert wrong.is_error and wrong.structured_content["error"]["param"] == "messages"
    assert unknown.is_error and unknown.structured_content["error"]["status"] == 404
    assert other.is_error and other.structured_content["error"]["param"] == "timeout"

    async def priced_out(client):
        return await client.call_tool("chat", CHAT)

    refused = over_http(stack, priced_out, key=key)
    assert refused.is_error and refused.structured_content["error"]["code"] == "budget_exceeded"
    assert "budget" in text_of(refused)


def test_without_a_valid_key_the_endpoint_is_a_401_with_the_metadata(make_stack):
    off = make_stack(mcp_enabled=False)
    assert off.http.post(f"{off.base_url}/mcp", json={}, timeout=30).status_code == 404
    stack = make_stack()
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for headers in ({}, {"Authorization": "Bearer pr_wrong"}):
        answer = requests.post(f"{stack.base_url}/mcp", json=body, headers=headers, timeout=30)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ") and "resource_metadata=" in challenge
    metadata = requests.get(f"{stack.base_url}/.well-known/oauth-protected-resource", timeout=30).json()
    assert metadata["resource"].endswith("/mcp") and metadata["bearer_methods_supported"] == ["header"]
    with pytest.raises(ExceptionGroup) as raised:  # the SDK's client gives up on the 401
        over_http(stack, lambda client: client.list_tools(), key="pr_wrong")
    assert raised.group_contains(MCPError, depth=None)


def test_stdio_entry_talks_to_a_running_podrelay(make_stack):
    stack = make_stack()
    env = {**os.environ, "PODRELAY_API_KEY": stack.key, "PODRELAY_URL": stack.base_url, "REDIS_URL": stack.settings.redis_url}
    server = StdioServerParameters(command=sys.executable, args=["-m", "flask", "--app", "app", "mcp"], env=env, cwd=str(ROOT))

    async def use():
        async with Client(server) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            return names, await client.call_tool("chat", CHAT)

    names, chat = run(use)
    assert "chat" in names and "job_wait" in names
    assert not chat.is_error and "Echo: Hello from an agent" in text_of(chat)


def test_through_the_procfiles_web_process_and_its_child_ends_with_it(make_stack, slow_emulator):
    stack = make_stack(procfile=True, runpod_api_base=f"{slow_emulator(3.0).base_url}/v2")
    seen = []

    async def progress(done, total, message):
        seen.append(done)

    async def use(client):
        return await client.call_tool("chat", CHAT, progress_callback=progress)

    chat = over_http(stack, use)
    assert not chat.is_error and "Echo: Hello from an agent" in text_of(chat)
    assert seen  # the progress notifications came through gunicorn's gevent workers as they were sent
    port = stack.base_url.rsplit(":", 1)[1]
    children = [line for line in mcp_children() if f"--base-url http://127.0.0.1:{port}" in line]
    assert 1 <= len(children) <= 2  # one per gunicorn worker that has had an MCP request
    child_pid = int(children[0].split()[0])
    os.kill(parent_of(child_pid), signal.SIGKILL)  # its gunicorn worker, killed: gunicorn starts another
    wait_until(
        lambda: not os.path.exists(f"/proc/{child_pid}") or zombie(child_pid), timeout=30, message="the child outlived its parent"
    )
    again = over_http(stack, use)  # the new worker starts its own
    assert not again.is_error and "Echo: Hello from an agent" in text_of(again)
    children = [line for line in mcp_children() if f"--base-url http://127.0.0.1:{port}" in line]
    stack.close()
    assert children and not [line for line in mcp_children() if line in children]


def parent_of(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def zombie(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def mcp_children() -> list[str]:
    """The command lines of every `integration.mcp serve` process on the machine."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "integration.mcp serve" in command:
            found.append(f"{pid} {command}")
    return found
