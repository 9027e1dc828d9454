"""The compiled loaders (integration/surfaces/compiled.py) agree with marshmallow's `Schema.load`.

For every schema a route loads, thousands of bodies drawn from each field's own kind of
value, good and bad (and an unknown key beside them): the compiled loader accepts exactly
the bodies `Schema.load` accepts, with the same result; the rest fall back to marshmallow.
"""

from __future__ import annotations

import random

import pytest
from marshmallow import Schema, ValidationError, fields, validate

from integration import surfaces
from integration.api import openai, responses, runpod_routes, webhooks
from integration.surfaces.compiled import Fallback, compile_schema
from integration.surfaces.fields import load

SCHEMAS = {
    **{f"surface {s.name}": s.schema for s in surfaces.SURFACES.values()},
    "webhook subscription": webhooks._create_schema,
    "webhook update": webhooks._update_schema,
    "webhook recover": webhooks._recover_schema,
    "runpod run": runpod_routes._run_schema,
    "responses": responses._schema,
    "transcription form": openai._form_schema,
}
ANY = [None, True, False, 0, 1, -1, 7, 8, 9, 512, 8192, 10**9, 0.0, 0.5, 1.5, 2.5, -2.5, "", "x", "0.5", "3", "true"]
ANY += ["a" * 300, "https://example.com/a.png", "http://example.com/hook", "https://bad host/x", "data:image/png;base64,AAAA"]
ANY += ["2030-01-01T00:00:00Z", "2030-01-01T00:00:00", "1024x1024", "0x1", [], ["x"], [1, 2], {}, {"a": 1}]


def choices(field: fields.Field) -> list:
    """The values a field's validators name (OneOf's choices), its inner field's too."""
    found = []
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            found += list(validator.choices)
    if isinstance(field, fields.List):
        found += [[c] for c in choices(field.inner)]
    return found


def value(field: fields.Field, rng: random.Random, depth: int = 0):
    if isinstance(field, fields.Nested) and depth < 3 and rng.random() < 0.7:
        return body(field.schema, rng, depth + 1)
    if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested) and depth < 3 and rng.random() < 0.7:
        return [body(field.inner.schema, rng, depth + 1) for _ in range(rng.choice([0, 1, 1, 2, 3]))]
    good = accepted(field)
    if good and rng.random() < 0.85:  # mostly values the field takes, so whole bodies pass too
        return rng.choice(good)
    return rng.choice(ANY + choices(field))


_ACCEPTED: dict[int, list] = {}


def accepted(field: fields.Field) -> list:
    """The values of the pool the field itself takes."""
    if id(field) in _ACCEPTED:
        return _ACCEPTED[id(field)]
    good = _ACCEPTED[id(field)] = []
    for candidate in ANY + choices(field):
        try:
            field.deserialize(candidate, "field", {})
        except ValidationError:
            continue
        good.append(candidate)
    return good


def body(schema: Schema, rng: random.Random, depth: int = 0) -> dict:
    names = list(schema.load_fields)
    required = [n for n, f in schema.load_fields.items() if f.required and rng.random() < 0.9]
    picked = set(required) | set(rng.sample(names, min(len(names), rng.choice([0, 1, 2, 3, 5]))))
    made = {name: value(schema.load_fields[name], rng, depth) for name in picked}
    if rng.random() < 0.3:
        made["extra_" + rng.choice("abc")] = rng.choice(ANY)
    return made


def marshmallow_answer(schema: Schema, made: dict):
    try:
        return "ok", schema.load(made)
    except ValidationError:
        return "error", None


def compiled_answer(loader, made: dict):
    try:
        return "ok", loader(made)
    except Fallback:
        return "error", None


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_compiled_loader_agrees_with_marshmallow(name):
    schema = SCHEMAS[name]
    loader = compile_schema(schema)
    assert loader is not None, f"{name} is no longer compiled: see compiled.py for what it leaves to marshmallow"
    rng = random.Random(name)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(2000):
        made = body(schema, rng)
        expected = marshmallow_answer(schema, made)
        assert compiled_answer(loader, made) == expected, made
        outcomes[expected[0]] += 1
    # Both kinds of body were drawn, so the comparison covered acceptance and refusal alike.
    assert outcomes["ok"] > 50 and outcomes["error"] > 50, outcomes


def test_a_body_with_an_error_is_named_by_marshmallow():
    chat = surfaces.get("chat").schema
    with pytest.raises(Exception) as raised:
        load(chat, {"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]})
    assert raised.value.status == 400 and raised.value.param == "messages[1].role"


def test_schemas_the_loader_does_not_run_exactly_are_left_to_marshmallow():
    from marshmallow import post_load, pre_load

    class WithPreLoad(Schema):
        name = fields.String()

        @pre_load
        def _lower(self, data, **kwargs):
            return {k: v.lower() for k, v in data.items()}

    class WithPostLoad(Schema):
        name = fields.String()

        @post_load
        def _wrap(self, data, **kwargs):
            return {"wrapped": data}

    class Renamed(Schema):
        name = fields.String(data_key="Name")

    for schema in (WithPreLoad(), WithPostLoad(), Renamed()):
        assert compile_schema(schema) is None
    assert load(WithPreLoad(), {"name": "ABC"}) == {"name": "abc"}
    assert load(WithPostLoad(), {"name": "a"}) == {"wrapped": {"name": "a"}}
