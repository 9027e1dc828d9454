"""podrelay's Flask app and answer classes: Flask's, less three costs paid on every request.

Measured on the accept route (`python bench/pipeline.py --enqueue-only`, py-spy on a web
worker): Flask asks `inspect.iscoroutinefunction` of every hook and view on every request
(six times on `POST /v1/chat/completions`), and werkzeug runs every `Location` through
`iri_to_uri` (a URL split and re-quote) although podrelay's are plain ASCII paths, and
copies every answer's headers (each one validated again) before it sends them, although it
changes none of a usual answer's. All three answers are the same for the same input, so they
are kept or skipped here.
"""

from __future__ import annotations

import re
from types import FunctionType

from flask import Flask, Response

# A Location that `iri_to_uri` leaves as it is: a path of unreserved characters (podrelay's own).
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/_.~-]*\Z")


class Answer(Response):
    """Flask's response, with a plain-path `Location` sent as it is, and headers werkzeug would
    leave unchanged sent without its copy of them (each copied header is validated again)."""

    def get_wsgi_headers(self, environ):
        """werkzeug's headers; a plain-path Location is not re-quoted (it would come out the same)."""
        location, unchanged = self._as_werkzeug_would_send()
        if unchanged:
            return self.headers  # only read: werkzeug's caller turns them into a new list
        if location is None or self.autocorrect_location_header or not _PLAIN_PATH.match(location):
            return super().get_wsgi_headers(environ)
        del self.headers["Location"]
        try:
            headers = super().get_wsgi_headers(environ)
        finally:
            self.headers["Location"] = location
        headers["Location"] = location
        return headers

    def _as_werkzeug_would_send(self) -> tuple[str | None, bool]:
        """The Location, and whether werkzeug would send the headers exactly as they are: a
        status with a body, its Content-Length set, no Content-Location, and no Location or a
        plain path one (werkzeug's `get_wsgi_headers` changes only those)."""
        location = content_length = None
        for name, value in self.headers:
            lower = name.lower()
            if lower == "location":
                if location is not None:  # two: left to werkzeug, which sends the last
                    return None, False
                location = value
            elif lower == "content-length":
                content_length = value
            elif lower == "content-location":
                return location, False
        status = self.status_code
        plain = location is None or (not self.autocorrect_location_header and _PLAIN_PATH.match(location) is not None)
        return location, plain and content_length is not None and 200 <= status and status not in (204, 304)


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
