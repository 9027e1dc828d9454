"""The n8n spec: every surface of the registry as an n8n action, generated, never written.

`flask --app app n8n-spec` writes `n8n-node-spec/spec.json`; a test fails when the
committed file differs from what the registry generates, so the n8n node, built from the
file, cannot drift from the API. Fields, types, limits and options come from the
marshmallow schemas; resources and operations from each surface's `action`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from marshmallow import fields, validate

from integration.jobs.events import ASKABLE_EVENT_NAMES
from integration.jobs.record import JobStatus
from integration.surfaces import SURFACES
from integration.surfaces import fields as request_fields
from integration.surfaces.embeddings import StringOrStrings

SPEC_PATH = Path(__file__).resolve().parents[2] / "n8n-node-spec" / "spec.json"
_SKIPPED = {"policy", "stream"}  # for direct API users (RunPod policy, token streaming), not a node form


def _display(name: str) -> str:
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", name).replace("_", " ").split()
    return " ".join(w.upper() if w.lower() in ("url", "id", "fps") else w.capitalize() for w in words)


def _field(name: str, field: fields.Field) -> dict:
    spec: dict = {"name": name, "displayName": _display(name), "required": bool(field.required)}
    if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
        spec["type"] = "collection"
        spec["items"] = [_field(n, f) for n, f in field.inner.schema.fields.items()]
    elif isinstance(field, fields.List):
        spec["type"] = "list"
    elif isinstance(field, fields.Nested):
        spec["type"] = "object"
    elif isinstance(field, StringOrStrings):
        spec["type"] = "stringOrList"
    elif isinstance(field, fields.Boolean):
        spec["type"] = "boolean"
    elif isinstance(field, (fields.Integer, fields.Float)):
        spec["type"] = "number"
        spec["integer"] = isinstance(field, fields.Integer)
    elif isinstance(field, fields.Raw) and not isinstance(field, fields.String):
        spec["type"] = "json"
    else:
        spec["type"] = "string"
        if isinstance(field, (fields.Url, request_fields.WebhookUrl, request_fields.MediaUrl)):
            spec["format"] = "url"
        if isinstance(field, request_fields.MediaUrl) and field.data:
            spec["file"] = True  # a URL, or a file of the item's binary data (sent as a data URI)
    for validator in field.validators:
        if isinstance(validator, validate.Range):
            spec.update({k: v for k, v in (("min", validator.min), ("max", validator.max)) if v is not None})
        elif isinstance(validator, validate.Length):
            spec.update({k: v for k, v in (("minLength", validator.min), ("maxLength", validator.max)) if v is not None})
        elif isinstance(validator, validate.OneOf):
            spec["options"] = list(validator.choices)
        elif isinstance(validator, validate.Regexp):
            spec["pattern"] = validator.regex.pattern
    return spec


def build() -> dict:
    """The spec, from the registry as it is."""
    actions = []
    for surface in SURFACES.values():
        resource, operation = surface.action
        fields_spec = [_field(name, field) for name, field in surface.schema.fields.items() if name not in _SKIPPED]
        for spec in fields_spec:
            if spec["name"] == "model":
                spec.update(options=list(surface.models), default=surface.default_model, allowOther=surface.any_model)
        action = {
            "resource": resource,
            "operation": operation,
            "surface": surface.name,
            "method": "POST",
            "route": f"/v1{surface.route}",
            "binaryOutput": surface.returns_file,
            "fields": fields_spec,
        }
        if surface.file_params:  # the field an input binary property fills: the required one, else the first
            required = [name for name in surface.file_params if surface.schema.fields[name].required]
            action["binaryInput"] = (required or list(surface.file_params))[0]
        actions.append(action)
    job_actions = [
        {"resource": "Job", "operation": "get", "method": "GET", "route": "/v1/jobs/{id}"},
        {
            "resource": "Job",
            "operation": "list",
            "method": "GET",
            "route": "/v1/jobs",
            "query": ["status", "surface", "limit", "cursor"],
        },
        {"resource": "Job", "operation": "cancel", "method": "POST", "route": "/v1/jobs/{id}/cancel"},
        {
            "resource": "Job",
            "operation": "download",
            "method": "GET",
            "route": "/v1/jobs/{id}/download",
            "binaryOutput": True,
            "query": ["index"],
        },
    ]
    return {
        "version": 1,
        "generatedFrom": "integration/surfaces/registry.py",
        "actions": actions + job_actions,
        "jobStatuses": [s.value for s in JobStatus],
        "finalStatuses": [s.value for s in JobStatus if s.final],
        "events": list(ASKABLE_EVENT_NAMES),
        "surfaces": list(SURFACES),
    }


def render() -> str:
    """The spec as the committed file's text."""
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"
