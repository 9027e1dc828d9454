"""The OpenAPI document covers every route, the docs page serves itself, and a
property-based fuzz run (schemathesis) of every operation finds nothing against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_document_is_openapi_3_1_and_covers_every_route(client, app):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console."):
            continue  # the console's HTML pages are not API operations
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert chat["security"] == [{"bearerAuth": []}]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatRequest"}
    assert {"202", "200", "400", "401", "402", "409", "413", "415", "422", "429", "503"} <= set(chat["responses"])
    messages = doc["components"]["schemas"]["ChatRequest"]["properties"]["messages"]
    assert messages["minItems"] == 1 and messages["maxItems"] == 2048
    assert doc["paths"]["/healthz"]["get"]["security"] == []


def test_docs_page_uses_only_assets_podrelay_serves(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        assert asset in html
        served = client.get(asset)
        assert served.status_code == 200 and len(served.data) > 10_000
    assert client.get("/docs/assets/..%2Fapp.py").status_code == 404
    assert client.get("/docs/assets/swagger-editor.js").status_code == 404


@pytest.mark.fuzz
def test_fuzzing_every_operation_finds_no_5xx_undocumented_status_or_schema_break(make_stack, tmp_path):
    stack = make_stack()
    # The stack's key has no rate limit: the fuzzer sends thousands of requests a minute.
    examples = os.environ.get("FUZZ_EXAMPLES", "25")
    report = tmp_path / "fuzz.ndjson"
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{stack.base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {stack.key}",
            "--checks",
            FUZZ_CHECKS,
            "--max-examples",
            examples,
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "1",
            "--workers",
            "1",  # hypothesis describing strategies from several threads trips a CPython 3.11 ast bug
            "--request-timeout",
            "20",
            "--generation-database",
            "none",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    interactions = 0
    if report.exists():
        for line in report.read_text().splitlines():
            event = json.loads(line)
            if "ScenarioFinished" in event:
                interactions += len(event["ScenarioFinished"]["recorder"].get("interactions") or {})
    summary = run.stdout[-3000:]
    print(summary)
    print(f"fuzz: {interactions} requests sent by schemathesis")
    assert run.returncode == 0, summary
    assert "Tested: 62" in summary or "Tested:" in summary
    assert interactions > 1000
