"""The OpenAPI 3.1 document of every route, generated from the marshmallow schemas (apispec).

Request bodies are the schemas the routes validate with (the surfaces' and the domains');
answers are `answer_schemas.py`. Each route's entry in `operations.py` says what it
answers; `document(app)` walks the app's URL map, so a route without an entry fails the
test that checks the document covers every route. Errors are the envelope
(`ErrorSchema`), with the statuses that route can give.
"""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from integration import surfaces
from integration.api import answer_schemas as answers
from integration.api.operations import ERROR_TEXT, JSON, KEYED, POSTED, Op, operations
from integration.surfaces.embeddings import StringOrStrings
from integration.surfaces.fields import MAX_ITEMS, MediaUrl, WebhookUrl

PAGES = ("console.",)  # blueprints of HTML pages, left out of the document


def _content(answer) -> dict:
    name, media = (answer, [JSON]) if isinstance(answer, str) else answer
    schema = {"$ref": f"#/components/schemas/{name}"} if name else {}
    return {m: {"schema": schema} for m in media}


def document(app: Flask, version: str) -> dict:
    """The OpenAPI 3.1 document of every route of `app`."""
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="podrelay",
        version=version,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": "Asynchronous GPU inference on RunPod Serverless, with signed webhooks. See the README."},
    )
    plugin.converter.add_attribute_function(_custom_field)
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API key, pr_..."})
    for name in dir(answers):
        if name.endswith("Schema") and name != "Schema" and name[: -len("Schema")] not in spec.components.schemas:
            spec.components.schema(name[: -len("Schema")], schema=getattr(answers, name))
    ops = operations(plugin.converter)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.startswith(PAGES):
            continue  # pages for people (the console), not API operations
        op = ops[rule.endpoint]  # KeyError: a route without an entry above
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        params = [
            {"name": arg, "in": "path", "required": True, "schema": _path_schema(arg)}
            for arg in re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", rule.rule)
        ]
        params += [{"name": n, "in": "query", "required": False, "schema": s, "description": d} for n, s, d in op.query]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            spec.path(path=path, operations={method.lower(): _operation(op, method, params)})
    return _refine(spec.to_dict())


_HOST = r"[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*"
URL_PATTERN = rf"^https?://{_HOST}(:[0-9]{{1,5}})?(/[!-~]*)?$"
HTTPS_PATTERN = rf"^https://{_HOST}(:[0-9]{{1,5}})?(/[!-~]*)?$"


def _custom_field(self, field, **kwargs) -> dict:
    """What podrelay's custom fields (`surfaces/fields.py`, `surfaces/embeddings.py`) accept, in JSON Schema."""
    if isinstance(field, WebhookUrl):
        return {"format": "uri", "maxLength": 2048, "pattern": URL_PATTERN}
    if isinstance(field, MediaUrl):
        https = {"type": "string", "format": "uri", "maxLength": 2048, "pattern": HTTPS_PATTERN}
        if not field.data:
            return https
        return {"type": None, "anyOf": [https, {"type": "string", "pattern": "^data:[a-z]+/[A-Za-z0-9.+-]+;base64,"}]}
    if isinstance(field, StringOrStrings):
        strings = {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": {"type": "string", "minLength": 1}}
        return {"anyOf": [{"type": "string", "minLength": 1}, strings]}
    return {}


def _refine(doc: dict) -> dict:
    """What the schemas say only in code: each surface's models, a message's content."""
    components = doc["components"]["schemas"]
    for surface in surfaces.SURFACES.values():
        cls = surface.schema if isinstance(surface.schema, type) else type(surface.schema)
        model = components[_schema_name(cls)]["properties"].get("model")
        if model is not None and not surface.any_model:
            model["enum"] = list(surface.models)
    parts = {"type": "array", "maxItems": MAX_ITEMS, "items": {"type": "object"}}
    message = components["MessageRequest"]
    message["properties"]["content"] = {
        "anyOf": [{"type": "string"}, parts, {"type": "null"}],
        "description": "null only for assistant",
    }
    message["required"] = sorted({*message.get("required", []), "content"})
    for component in components.values():  # a field mapped by hand above has no type of its own
        for prop in component.get("properties", {}).values():
            if prop.get("type", "") is None:
                del prop["type"]
    return doc


def _schema_name(schema) -> str:
    """Answers keep their names; request schemas are named `...Request` (a `Subscription`
    answer and the `SubscriptionRequest` that creates one)."""
    cls = schema if isinstance(schema, type) else type(schema)
    base = cls.__name__.removesuffix("Schema").lstrip("_")
    return base if cls.__module__ == answers.__name__ else f"{base}Request"


def _path_schema(arg: str) -> dict:
    if arg == "surface":
        return {"type": "string", "enum": list(surfaces.SURFACES)}
    return {"type": "string", "minLength": 1}


def _operation(op: Op, method: str, params: list) -> dict:
    parameters = list(params)
    statuses = set(op.errors)
    if op.keyed:
        statuses |= set(KEYED)
        if method == "POST":
            statuses |= set(POSTED)
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
                    "description": "Replays the first answer for 24 h (Stripe's rules)",
                }
            )
        if op.answers.get(202) == "Enqueue":
            parameters.append(
                {
                    "name": "Prefer",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "wait or wait=N (RFC 7240)",
                }
            )
            parameters.append(
                {
                    "name": "Cancel-After",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^([0-9]+h)?([0-9]+m)?([0-9]+(\\.[0-9]+)?s?)?$"},
                    "description": "Cancel the job if it has not finished this long from now (90s, 5m, 1h30m)",
                }
            )
    responses = {str(code): {"description": "OK", "content": _content(answer)} for code, answer in op.answers.items()}
    for code in sorted(statuses):
        responses[str(code)] = {
            "description": ERROR_TEXT.get(code, "Error"),
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation = {"summary": op.summary, "tags": [op.tag], "parameters": parameters, "responses": responses}
    if op.keyed:
        operation["security"] = [{"bearerAuth": []}]
    else:
        operation["security"] = []
    if op.form is not None:
        operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": op.form}}}
    elif isinstance(op.body, dict):
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": op.body}}}
    elif op.body is not None:
        schema = op.body if isinstance(op.body, type) else type(op.body)
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    return operation
