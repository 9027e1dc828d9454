"""The n8n spec is generated from the registry; the committed file must match it."""

from __future__ import annotations

import json

import integration.surfaces.n8n_spec as n8n_spec
from integration.surfaces import SURFACES
from integration.surfaces.n8n_spec import SPEC_PATH, build, render


def test_committed_spec_matches_the_registry():
    assert SPEC_PATH.read_text() == render(), "n8n-node-spec/spec.json is stale: run `flask --app app n8n-spec`"


def test_every_surface_is_an_action_with_its_route_and_fields():
    spec = build()
    by_surface = {a["surface"]: a for a in spec["actions"] if "surface" in a}
    assert set(by_surface) == set(SURFACES)
    assert len({(a["resource"], a["operation"]) for a in spec["actions"]}) == len(spec["actions"])  # no clashes
    chat = by_surface["chat"]
    assert (chat["resource"], chat["operation"], chat["route"]) == ("Chat", "create", "/v1/chat/completions")
    temperature = next(f for f in chat["fields"] if f["name"] == "temperature")
    assert (temperature["type"], temperature["min"], temperature["max"]) == ("number", 0, 2)
    assert next(f for f in chat["fields"] if f["name"] == "messages")["required"] is True
    assert by_surface["images"]["binaryOutput"] is True and by_surface["embeddings"]["binaryOutput"] is False
    model = next(f for f in by_surface["images"]["fields"] if f["name"] == "model")
    assert model["default"] == "Flux1schnell" and "Ben2" in model["options"]


def test_cli_check_fails_on_a_stale_spec(app, tmp_path, monkeypatch):
    stale = tmp_path / "spec.json"
    stale.write_text(json.dumps({"version": 0}))
    monkeypatch.setattr(n8n_spec, "SPEC_PATH", stale)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["n8n-spec", "--check"]).exit_code != 0
    assert runner.invoke(args=["n8n-spec"]).exit_code == 0
    assert runner.invoke(args=["n8n-spec", "--check"]).exit_code == 0
    assert json.loads(stale.read_text())["version"] == 1
