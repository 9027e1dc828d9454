"""podrelay's Flask app and answer classes: Flask's, less two costs paid on every request.

Measured on the accept route (`python bench/pipeline.py --enqueue-only`, py-spy on a web
worker): Flask asks `inspect.iscoroutinefunction` of every hook and view on every request
(six times on `POST /v1/chat/completions`), and werkzeug runs every `Location` through
`iri_to_uri` (a URL split and re-quote) although podrelay's are plain ASCII paths. Both
answers are the same for the same input, so they are kept or skipped here.
"""

from __future__ import annotations

import re
from types import FunctionType

from flask import Flask, Response

# A Location that `iri_to_uri` leaves as it is: a path of unreserved characters (podrelay's own).
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/_.~-]*\Z")


class Answer(Response):
    """Flask's response, with a plain-path `Location` sent as it is."""

    def get_wsgi_headers(self, environ):
        """werkzeug's headers; a plain-path Location is not re-quoted (it would come out the same)."""
        location = self.headers.get("Location")
        if location is None or self.autocorrect_location_header or not _PLAIN_PATH.match(location):
            return super().get_wsgi_headers(environ)
        del self.headers["Location"]
        try:
            headers = super().get_wsgi_headers(environ)
        finally:
            self.headers["Location"] = location
        headers["Location"] = location
        return headers


class App(Flask):
    """Flask, with `ensure_sync`'s answer kept per function (hooks and views live as long as the app)."""

    response_class = Answer

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync: dict = {}

    def ensure_sync(self, func):
        """Flask's answer for `func`, asked once per plain function (a bound method is asked each time)."""
        if type(func) is not FunctionType:
            return super().ensure_sync(func)
        sync = self._sync.get(func)
        if sync is None:
            sync = super().ensure_sync(func)
            if len(self._sync) < 10_000:
                self._sync[func] = sync
        return sync
