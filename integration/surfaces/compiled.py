"""A marshmallow schema's `load`, compiled to a plain function for the bodies that pass it.

`Schema.load` costs about 90 µs for a one-message chat request: it walks every declared
field (a chat schema has 25) and the machinery around each, whether the body has it or
not. That was the largest single cost of the accept route (`python bench/pipeline.py`).
The compiled loader walks the body's own keys instead, and asks each field's own
`deserialize`, so each field's conversion and validators stay marshmallow's: it gives the
same result as `Schema.load` for every body `Schema.load` accepts. Whatever it does not
handle exactly, and every body with an error, it leaves to `Schema.load` (`Fallback`), so
the error messages stay marshmallow's, the first bad field named (`fields.load`).

The schema is the one definition: nothing here restates a field's rules. A schema with a
hook this does not run (`pre_load`, `post_load`, `@validates`, a collection validator) or
a field named apart from its key (`data_key`, `attribute`) is not compiled: it is loaded
by marshmallow. `tests/test_compiled.py` checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Callable

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.utils import missing

Loader = Callable[[dict], dict]


class Fallback(Exception):
    """The compiled loader cannot give this body's answer: ask `Schema.load`."""


def compile_schema(schema: Schema) -> Loader | None:
    """The loader of `schema`, or None when it must be loaded by marshmallow."""
    hooks = schema._hooks
    if hooks[PRE_LOAD] or hooks[POST_LOAD] or hooks[VALIDATES] or schema.many or schema.partial:
        return None
    validators = []
    for attr_name, pass_collection, options in hooks[VALIDATES_SCHEMA]:
        if pass_collection or options.get("pass_original"):
            return None
        validators.append(getattr(schema, attr_name))
    load_fields = schema.load_fields
    readers: dict[str, Callable] = {}
    defaults = {}
    required = []
    for name, field in load_fields.items():
        if field.data_key is not None or field.attribute is not None:
            return None
        reader = _reader(field)
        if reader is None:
            return None
        readers[name] = reader
        if field.required:
            required.append(name)
        elif field.load_default is not missing:
            defaults[name] = field.load_default
    unknown = schema.unknown

    def load(body: dict) -> dict:
        if type(body) is not dict:
            raise Fallback
        result = {}
        for key, value in body.items():
            reader = readers.get(key)
            if reader is not None:
                result[key] = reader(value, key, body)
            elif unknown == INCLUDE:
                result[key] = value
            elif unknown != EXCLUDE:  # RAISE: an error, told by marshmallow
                raise Fallback
        for name in required:
            if name not in result:
                raise Fallback
        for name, default in defaults.items():
            if name not in result:
                result[name] = default() if callable(default) else default
        try:
            for validator in validators:
                validator(result, partial=None, many=False, unknown=unknown)
        except ValidationError:
            raise Fallback from None
        return result

    return load


def _reader(field: fields.Field) -> Callable | None:
    """How one field's value is read: its own `deserialize`, or, for a nested schema (alone or
    in a list), the nested schema's compiled loader and then the field's own validators."""
    if isinstance(field, fields.Nested):
        if field.many or field.only or field.exclude or field.unknown is not None:
            return None
        inner = compile_schema(field.schema)
        if inner is None:
            return None
        return _checked(field, inner)
    if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
        item = _reader(field.inner)
        if item is None:
            return None

        def read_list(value, key, body):
            if type(value) is not list:
                raise Fallback
            output = [item(each, key, body) for each in value]
            return _validated(field, output)

        return _nullable(field, read_list)

    if getattr(field, "pre_load", None) or getattr(field, "post_load", None):

        def read(value, key, body):
            try:
                return field.deserialize(value, key, body)
            except ValidationError:
                raise Fallback from None

        return read
    # `Field.deserialize` for a value the body has, step by step, but with the validators called
    # one by one: marshmallow builds a `validate.And` of them on every call (a third of a chat
    # request's load). Any error is left to marshmallow, which tells it the same way as before.
    convert = field._deserialize

    def read_value(value, key, body):
        try:
            output = convert(value, key, body)
        except ValidationError:
            raise Fallback from None
        return _validated(field, output)

    return _nullable(field, read_value)


def _checked(field: fields.Field, inner: Loader) -> Callable:
    def read_nested(value, key, body):
        return _validated(field, inner(value))

    return _nullable(field, read_nested)


def _nullable(field: fields.Field, read: Callable) -> Callable:
    """`read`, with a JSON null taken as marshmallow takes it (None if allowed, else an error)."""

    def read_or_none(value, key, body):
        if value is None:
            if field.allow_none:
                return None
            raise Fallback
        return read(value, key, body)

    return read_or_none


def _validated(field: fields.Field, output):
    """`output`, once the field's own validators pass it (called one by one, see `_reader`)."""
    try:
        for validator in field.validators:
            validator(output)
    except ValidationError:
        raise Fallback from None
    return output
