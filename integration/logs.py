"""Logging that follows a job and cannot be forged or leak.

Each line carries the ids it concerns (`request_id`, `job_id`, `delivery_id`): bound for
the duration of an HTTP request (`bind`), or given on the record (`extra=`), so one
request id leads from the HTTP request that accepted a job through the worker that ran
it to each webhook delivery of its events. `LOG_FORMAT=json` writes one JSON object per
line (the default outside development); `text` writes readable lines.

A value from a request (a path, a header, a query string) may carry CR/LF or terminal
escapes; written as-is it could fake log lines. Both formats escape control characters
(tracebacks in `text` keep their own line breaks), and both mask API keys, Bearer tokens,
webhook secrets and the configured secrets wherever they would appear.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import threading
import time
from contextvars import ContextVar, Token
from datetime import UTC, datetime

import orjson

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x80-\x9f]")
_SECRET_SHAPES = re.compile(
    r"(pr_[A-Za-z0-9_-]{8,}|whsec_[A-Za-z0-9+/=]{8,}|(?i:bearer)\s+[^\s,;\"]+"
    r"|(?<=/callbacks/runpod/)[^\s/?\"]+|(?<=/downloads/)[^\s/?\"]+|(?<=/files/)[^\s/?\"]+)"  # signed tokens in paths
)
REDACTED = "[redacted]"
IDS = ("request_id", "job_id", "delivery_id")
_bound: ContextVar[dict | None] = ContextVar("podrelay_log_ids", default=None)


def escape(text: str) -> str:
    """Control characters as visible escapes (`\\n`, `\\x1b`): a message stays one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def bind(**ids: str | None) -> Token:
    """Attach ids to every line logged in this context until `unbind`."""
    return _bound.set({**(_bound.get() or {}), **{k: v for k, v in ids.items() if v}})


def unbind(token: Token) -> None:
    """Drop the ids `bind` attached."""
    try:
        _bound.reset(token)
    except ValueError:  # made in another context (a server that ends requests elsewhere)
        _bound.set(None)


def job_ids(job) -> dict:
    """`extra=` for a line about a job."""
    return {"request_id": job.request_id, "job_id": job.id}


class SafeFormatter(logging.Formatter):
    """Readable lines: escaped messages, the ids appended, secrets masked."""

    def __init__(self, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s", secrets: tuple[str, ...] = ()):
        super().__init__(fmt)
        self.secrets = tuple(s for s in secrets if s and len(s) >= 8)

    def redact(self, text: str) -> str:
        """Mask the configured secrets and anything shaped like a key, token or webhook secret."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _SECRET_SHAPES.sub(REDACTED, text)

    @staticmethod
    def ids(record: logging.LogRecord) -> dict:
        """The ids a record carries: those bound to the context, and its own `extra=` ones."""
        found = dict(_bound.get() or {})
        found.update({k: getattr(record, k) for k in IDS if getattr(record, k, None)})
        return found

    def format(self, record: logging.LogRecord) -> str:
        """One escaped line with its ids, secrets masked."""
        record = logging.makeLogRecord(record.__dict__)  # other handlers keep the original
        ids = self.ids(record)
        suffix = "".join(f" {k}={v}" for k, v in ids.items())
        record.msg, record.args = escape(record.getMessage()) + escape(suffix), None
        return self.redact(super().format(record))


class JsonFormatter(SafeFormatter):
    """One JSON object per line: time, level, logger, message, the ids, any exception."""

    _second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def timestamp(self, created: float) -> str:
        """ISO 8601 in UTC with milliseconds; the seconds' text made once per second."""
        second = int(created)
        if self._second[0] != second:
            self._second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        return f"{self._second[1]}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object, secrets masked."""
        body = {
            "time": self.timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self.ids(record),
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        try:  # JSON escapes every control character
            line = orjson.dumps(body).decode()
        except TypeError:  # a message that is not valid Unicode (a lone surrogate)
            line = json.dumps(body, separators=(",", ":"))
        return self.redact(line)


class BufferedStreamHandler(logging.StreamHandler):
    """A StreamHandler that writes INFO lines in batches: one write for many lines, at the
    latest `FLUSH_EVERY` seconds later (a flusher thread), at once from WARNING up and at
    exit. A busy web process logs a line per request, and a write per line cost more than
    the line's formatting."""

    FLUSH_EVERY = 0.2
    MAX_BUFFERED = 64 * 1024

    def __init__(self, stream=None):
        super().__init__(stream)
        self._lines: list[str] = []
        self._size = 0
        self._flusher_pid = 0
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the line; write the queue now for a warning or worse, or when it is large."""
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 (logging's own contract: a bad record must not raise)
            self.handleError(record)
            return
        self._lines.append(line)
        self._size += len(line)
        if record.levelno >= logging.WARNING or self._size >= self.MAX_BUFFERED:
            self.flush()
        elif self._flusher_pid != os.getpid():
            self._flusher_pid = os.getpid()
            threading.Thread(target=self._flush_often, name="log-flush", daemon=True).start()

    def flush(self) -> None:
        """Write what is queued, in one write."""
        with self.lock:
            lines, self._lines, self._size = self._lines, [], 0
            if lines and self.stream and not getattr(self.stream, "closed", False):
                try:
                    self.stream.write("".join(lines))
                    self.stream.flush()
                except (OSError, ValueError):  # stderr gone (a closed pipe at exit): nothing to write to
                    pass

    def _flush_often(self) -> None:
        while True:
            time.sleep(self.FLUSH_EVERY)
            if self._lines:
                self.flush()


def configure(level: str, secrets: tuple[str, ...] = (), style: str = "text") -> None:
    """Route the root logger through podrelay's formatter (once per process)."""
    # No formatter here shows a line's source or thread: the records need not find them (logging's
    # own advice, "Optimization"; finding the caller walks the stack on every line). The process id
    # stays: gunicorn's own text lines show it ("[%(process)d]"), and formatting them failed without it.
    logging._srcfile = None  # noqa: SLF001
    logging.logThreads = logging.logMultiprocessing = False
    handler = BufferedStreamHandler()
    handler.setFormatter(JsonFormatter(secrets=secrets) if style == "json" else SafeFormatter(secrets=secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_podrelay", False)]:
        root.removeHandler(old)
    handler._podrelay = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
