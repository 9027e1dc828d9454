"""Load and run the podrelay nodes in a real n8n 1.123, against a live podrelay.

    python n8n-node-spec/scripts/check_in_n8n.py   (after `npm run build`)

Installs n8n 1.123 from npm in a temporary folder (n8n asks for `xlsx` by a tarball URL
outside the package registries; an npm override takes the registry's `xlsx` instead),
starts podrelay with `flask --app app start --demo`, starts n8n with this package in
N8N_CUSTOM_EXTENSIONS, checks that n8n lists both nodes and the credential, creates the
credential and a workflow (Manual Trigger -> podrelay Chat: create -> podrelay Image:
generate, its prompt taken from the chat's answer -> podrelay Image: upscale, sending the
first image's binary data), runs it with `n8n execute`, and checks each node's output. Then
a Basic LLM Chain with n8n's own OpenAI Chat Model at its default version (Responses API
on), then the OpenAI node's default version's "Message a model", then the Embeddings OpenAI
sub-node under a Simple Vector Store (insert, then load), all pointed at podrelay's
`/openai/v1`. Exits non-zero on the first thing that is not as expected.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

PACKAGE = Path(__file__).resolve().parent.parent
REPO = PACKAGE.parent
N8N_VERSION = "1.123.81"  # the latest 1.123 patch release
# npm overrides: `xlsx` from the registry (n8n names a tarball URL outside it); isolated-vm 5, since
# the 6.x that n8n 1.123.81 asks for needs Node.js 22 to build and this machine (and CI) has 20.
OVERRIDES = {"xlsx": "0.18.5", "isolated-vm": "5.0.4"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float) -> None:
    """Until `url` answers 200 with JSON (n8n answers an HTML page while it starts up)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            answer = requests.get(url, timeout=2)
            if answer.status_code == 200 and answer.headers.get("content-type", "").startswith("application/json"):
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} did not answer in {seconds:.0f} s")


PASSED: list[str] = []


def check(condition: bool, what: str) -> None:
    print(("ok   " if condition else "FAIL ") + what, flush=True)
    if not condition:
        print(f"n8n: {len(PASSED)} passed, 1 failed", flush=True)
        raise SystemExit(1)
    PASSED.append(what)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="podrelay-n8n-"))
    home = work / "home"
    # N8N_INSTALL_DIR: reuse an n8n installed there before (it takes minutes to install).
    n8n_dir = Path(os.environ.get("N8N_INSTALL_DIR") or work / "n8n")
    n8n = str(n8n_dir / "node_modules" / ".bin" / "n8n")
    if not Path(n8n).exists():
        n8n_dir.mkdir(parents=True, exist_ok=True)
        (n8n_dir / "package.json").write_text(json.dumps({"private": True, "overrides": OVERRIDES}))
        print(f"installing n8n {N8N_VERSION} in {n8n_dir}", flush=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", f"n8n@{N8N_VERSION}"], cwd=n8n_dir, check=True
        )

    relay_port, emulator_port, n8n_port = free_port(), free_port(), free_port()
    relay_env = {**os.environ, "DATA_DIR": str(work / "podrelay"), "PORT": str(relay_port), "EMULATOR_PORT": str(emulator_port)}
    relay_env.pop("REDIS_URL", None)
    n8n_env = {
        **os.environ,
        "N8N_USER_FOLDER": str(home),
        "N8N_CUSTOM_EXTENSIONS": str(PACKAGE),
        "N8N_PORT": str(n8n_port),
        "N8N_RUNNERS_ENABLED": "false",
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_SECURE_COOKIE": "false",  # the session cookie over plain http on loopback
    }
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    relay = subprocess.Popen(
        [*flask, "start", "--demo"],
        cwd=REPO,
        env=relay_env,
        stdout=open(work / "podrelay.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = None
    try:
        wait_for(f"http://127.0.0.1:{relay_port}/healthz", 60)
        key = (
            subprocess.run([*flask, "keys", "create", "n8n"], cwd=REPO, env=relay_env, capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )

        server = subprocess.Popen(
            [n8n, "start"], env=n8n_env, stdout=open(work / "n8n.log", "w"), stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{n8n_port}"
        wait_for(f"{base}/rest/settings", 180)
        n8n_api = requests.Session()
        owner = {"email": "owner@example.com", "firstName": "Ci", "lastName": "Owner", "password": "Passw0rd-podrelay"}
        check(n8n_api.post(f"{base}/rest/owner/setup", json=owner, timeout=30).status_code == 200, "n8n owner set up")
        node_types = {n["name"]: n for n in n8n_api.get(f"{base}/types/nodes.json", timeout=30).json()}
        credential_types = {c["name"] for c in n8n_api.get(f"{base}/types/credentials.json", timeout=30).json()}
        check(
            "CUSTOM.podrelay" in node_types and "CUSTOM.podrelayTrigger" in node_types,
            "n8n loaded the podrelay and podrelay Trigger nodes",
        )
        check("podrelayApi" in credential_types, "n8n loaded the podrelay API credential")
        check("CUSTOM.podrelayTool" in node_types, "n8n offers the podrelay node as an AI Agent tool (usableAsTool)")

        credential = {
            "name": "podrelay",
            "type": "podrelayApi",
            "data": {"baseUrl": f"http://127.0.0.1:{relay_port}", "apiKey": key},
        }
        credential_id = n8n_api.post(f"{base}/rest/credentials", json=credential, timeout=30).json()["data"]["id"]
        use = {"podrelayApi": {"id": credential_id, "name": "podrelay"}}

        def create_workflow(name: str, nodes: list[dict], links: list[tuple[str, str, str]]) -> str:
            """A workflow of a Manual Trigger ("Start") and `nodes`, wired by `links` (from, to, connection type); its id."""
            start = {
                "id": "1",
                "name": "Start",
                "type": "n8n-nodes-base.manualTrigger",
                "typeVersion": 1,
                "position": [0, 0],
                "parameters": {},
            }
            connections: dict = {}
            for source, target, kind in links:
                connections.setdefault(source, {}).setdefault(kind, [[]])[0].append({"node": target, "type": kind, "index": 0})
            body = {"name": name, "active": False, "settings": {}, "nodes": [start, *nodes], "connections": connections}
            return n8n_api.post(f"{base}/rest/workflows", json=body, timeout=30).json()["data"]["id"]

        workflow_id = create_workflow(
            "podrelay check",
            [
                {
                    "id": "2", "name": "Chat", "type": "CUSTOM.podrelay", "typeVersion": 1, "position": [220, 0], "credentials": use,
                    "parameters": {"resource": "Chat", "operation": "create", "messages": {"items": [{"role": "user", "content": "Hello from n8n"}]},
                                   "additionalFields": {}, "waitForCompletion": True, "maxWait": 60},
                },
                {
                    "id": "3", "name": "Image", "type": "CUSTOM.podrelay", "typeVersion": 1, "position": [440, 0], "credentials": use,
                    "parameters": {"resource": "Image", "operation": "generate", "prompt": "={{ $json.result.choices[0].message.content }}",
                                   "additionalFields": {"n": 2}, "waitForCompletion": True, "maxWait": 60},
                },
                {
                    "id": "4", "name": "Upscale", "type": "CUSTOM.podrelay", "typeVersion": 1, "position": [660, 0], "credentials": use,
                    "parameters": {"resource": "Image", "operation": "upscale", "inputBinaryField": "data",
                                   "additionalFields": {"scale": 2}, "waitForCompletion": True, "maxWait": 60},
                },
            ],
            [("Start", "Chat", "main"), ("Chat", "Image", "main"), ("Image", "Upscale", "main")],
        )  # fmt: skip
        # n8n's own OpenAI Chat Model at its current default version (1.3: "Use Responses API" on),
        # pointed at podrelay's OpenAI mode, under a Basic LLM Chain.
        openai_credential = {
            "name": "podrelay as OpenAI",
            "type": "openAiApi",
            "data": {"apiKey": key, "url": f"http://127.0.0.1:{relay_port}/openai/v1"},
        }
        openai_id = n8n_api.post(f"{base}/rest/credentials", json=openai_credential, timeout=30).json()["data"]["id"]
        as_openai = {"openAiApi": {"id": openai_id, "name": "podrelay as OpenAI"}}
        chain_id = create_workflow(
            "podrelay with n8n's OpenAI nodes",
            [
                {"id": "2", "name": "Chain", "type": "@n8n/n8n-nodes-langchain.chainLlm", "typeVersion": 1.7, "position": [220, 0],
                 "parameters": {"promptType": "define", "text": "Hello from the chain"}},
                {"id": "3", "name": "Model", "type": "@n8n/n8n-nodes-langchain.lmChatOpenAi", "typeVersion": 1.3, "position": [220, 200],
                 "credentials": as_openai, "parameters": {"model": {"__rl": True, "mode": "id", "value": "gpt-4o-mini"}, "options": {}}},
                # The OpenAI node at its default version (2.1): "Message a model" calls POST /responses.
                {"id": "4", "name": "Message", "type": "@n8n/n8n-nodes-langchain.openAi", "typeVersion": 2.1, "position": [440, 0],
                 "credentials": as_openai,
                 "parameters": {"resource": "text", "operation": "response", "modelId": {"__rl": True, "mode": "id", "value": "gpt-4o-mini"},
                                "responses": {"values": [{"type": "text", "role": "user", "content": "Hello from the OpenAI node"}]},
                                "simplify": True, "options": {}}},
            ],
            [("Start", "Chain", "main"), ("Chain", "Message", "main"), ("Model", "Chain", "ai_languageModel")],
        )  # fmt: skip
        # The Embeddings OpenAI sub-node (its default version) under a Simple Vector Store: insert
        # embeds a document through podrelay's /openai/v1/embeddings, load embeds the query and finds it.
        embedder = {"credentials": as_openai, "typeVersion": 1.2, "type": "@n8n/n8n-nodes-langchain.embeddingsOpenAi",
                    "parameters": {"options": {}}}  # fmt: skip
        store = {"type": "@n8n/n8n-nodes-langchain.vectorStoreInMemory", "typeVersion": 1.3}
        memory = {"__rl": True, "mode": "id", "value": "podrelay_check"}
        vectors_id = create_workflow(
            "podrelay embeddings with n8n's Embeddings OpenAI",
            [
                {"id": "2", "name": "Note", "type": "n8n-nodes-base.set", "typeVersion": 3.4, "position": [200, 0],
                 "parameters": {"mode": "raw", "jsonOutput": '{"text": "podrelay keeps results for seven days"}', "options": {}}},
                {"id": "3", "name": "Insert", **store, "position": [400, 0], "parameters": {"mode": "insert", "memoryKey": memory}},
                {"id": "4", "name": "Embed", **embedder, "position": [400, 200]},
                {"id": "5", "name": "Loader", "type": "@n8n/n8n-nodes-langchain.documentDefaultDataLoader", "typeVersion": 1.1,
                 "position": [600, 200], "parameters": {}},
                {"id": "6", "name": "Search", **store, "position": [800, 0],
                 "parameters": {"mode": "load", "memoryKey": memory, "prompt": "How long are results kept?", "topK": 1}},
                {"id": "7", "name": "Embed query", **embedder, "position": [800, 200]},
            ],
            [("Start", "Note", "main"), ("Note", "Insert", "main"), ("Insert", "Search", "main"),
             ("Embed", "Insert", "ai_embedding"), ("Loader", "Insert", "ai_document"), ("Embed query", "Search", "ai_embedding")],
        )  # fmt: skip
        os.killpg(server.pid, signal.SIGTERM)  # `n8n execute` opens the same database
        server.wait(timeout=60)
        server = None

        def first_items(workflow: str, name: str) -> dict:
            """`n8n execute` of a workflow: each node's first output item."""
            done = subprocess.run(
                [n8n, "execute", "--id", workflow, "--rawOutput"], env=n8n_env, capture_output=True, text=True, timeout=300
            )
            check(done.returncode == 0, f"n8n execute ({name}) exited {done.returncode}: {done.stdout[-800:]}")
            runs = json.loads(done.stdout[done.stdout.index("{") :])["data"]["resultData"]["runData"]
            return {node: run[0]["data"]["main"][0][0] for node, run in runs.items() if "main" in (run[0].get("data") or {})}

        items = first_items(workflow_id, "podrelay nodes")
        chat = items["Chat"]["json"]
        check(chat["status"] == "completed", "Chat: the job completed")
        check(chat["result"]["choices"][0]["message"]["content"] == "Echo: Hello from n8n", "Chat: the completion came back")
        image = items["Image"]
        check(image["json"]["status"] == "completed", "Image: the job completed")
        check(sorted(image["binary"]) == ["data", "data_1"], "Image: two images as binary data")
        check(all(b["mimeType"] == "image/png" for b in image["binary"].values()), "Image: image/png")
        upscaled = items["Upscale"]
        check(upscaled["json"]["status"] == "completed", "Upscale: the job completed from the image's binary data")
        check(upscaled["binary"]["data"]["mimeType"] == "image/png", "Upscale: the upscaled image as binary data")

        items = first_items(chain_id, "n8n's OpenAI nodes")
        answer = items["Chain"]["json"]
        check(
            answer.get("text") == "Echo: Hello from the chain", f"LLM chain with OpenAI Chat Model 1.3 (Responses API): {answer}"
        )
        message = items["Message"]["json"]
        text = message["output"][0]["content"][0]["text"] if message.get("output") else message
        check(text == "Echo: Hello from the OpenAI node", f"OpenAI node 2.1, Message a model (POST /responses): {message}")
        items = first_items(vectors_id, "n8n's Embeddings OpenAI")
        found = items["Search"]["json"]
        check("seven days" in json.dumps(found), f"Embeddings OpenAI 1.2: the inserted document found by its embedding: {found}")
        embedded = requests.get(
            f"http://127.0.0.1:{relay_port}/v1/jobs",
            params={"surface": "embeddings"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()["data"]
        check(
            len(embedded) >= 2 and all(job["status"] == "completed" for job in embedded),
            f"Embeddings OpenAI: podrelay ran the document's and the query's embedding jobs ({len(embedded)})",
        )
        print("podrelay nodes load and run in n8n", N8N_VERSION)
        print(f"n8n: {len(PASSED)} passed, 0 failed", flush=True)
    finally:
        for process in (server, relay):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)


if __name__ == "__main__":
    main()
