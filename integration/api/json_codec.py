"""The JSON of podrelay's answers: orjson, Flask's encoder where orjson cannot encode a value.

Every answer is JSON, and on the accept route encoding it was a measurable share of the
request (`python bench/pipeline.py`). orjson writes UTF-8 as it is (Flask's default escapes
non-ASCII) and keeps key order. What it refuses (an integer past 64 bits in a worker's
output, a non-string key) is encoded by the standard library instead, so no answer fails.
Request bodies are read by orjson where it reads them as the standard library does, and by
the standard library otherwise (`context.json_body`): it names the field of a NaN or Infinity,
which orjson would only refuse as a whole.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider with orjson's `dumps`."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """The text of `obj`."""
        return self._bytes(obj, kwargs).decode()

    def response(self, *args: Any, **kwargs: Any):
        """`jsonify`'s answer, encoded once, as bytes."""
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self._bytes(obj, {}) + b"\n", mimetype=self.mimetype)

    def _bytes(self, obj: Any, kwargs: dict) -> bytes:
        if not kwargs:
            try:
                return orjson.dumps(obj)
            except TypeError:
                pass
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", False)
        kwargs.setdefault("separators", (",", ":"))  # a caller's own (the session cookie's serializer) wins
        return json.dumps(obj, **kwargs).encode()
