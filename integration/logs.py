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

import json
import logging
import re
from contextvars import ContextVar, Token
from datetime import UTC, datetime

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x80-\x9f]")
_SECRET_SHAPES = re.compile(
    r"(pr_[A-Za-z0-9_-]{8,}|whsec_[A-Za-z0-9+/=]{8,}|(?i:bearer)\s+[^\s,;\"]+"
    r"|(?<=/callbacks/runpod/)[^\s/?\"]+|(?<=/downloads/)[^\s/?\"]+)"  # signed tokens in paths
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

    def format(self, record: logging.LogRecord) -> str:
        """One JSON object, secrets masked."""
        body = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self.ids(record),
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(body, separators=(",", ":")))  # JSON escapes every control character


def configure(level: str, secrets: tuple[str, ...] = (), style: str = "text") -> None:
    """Route the root logger through podrelay's formatter (once per process)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(secrets=secrets) if style == "json" else SafeFormatter(secrets=secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_podrelay", False)]:
        root.removeHandler(old)
    handler._podrelay = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
