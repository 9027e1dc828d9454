"""Logging that cannot be forged or leak: every line is one line, and secrets are masked.

A value from a request (a path, a header, a query string) may carry CR/LF or terminal
escapes; written as-is it could fake log lines. The formatter escapes control
characters in each message (tracebacks keep their own line breaks) and masks API keys,
Bearer tokens, webhook secrets and the configured secrets wherever they would appear.
"""

from __future__ import annotations

import logging
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x80-\x9f]")
_SECRET_SHAPES = re.compile(r"(pr_[A-Za-z0-9_-]{8,}|whsec_[A-Za-z0-9+/=]{8,}|(?i:bearer)\s+[^\s,;]+)")
REDACTED = "[redacted]"


def escape(text: str) -> str:
    """Control characters as visible escapes (`\\n`, `\\x1b`): a message stays one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class SafeFormatter(logging.Formatter):
    """Escapes control characters in messages and masks secrets in whole records."""

    def __init__(self, fmt: str, secrets: tuple[str, ...] = ()):
        super().__init__(fmt)
        self.secrets = tuple(s for s in secrets if s and len(s) >= 8)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return _SECRET_SHAPES.sub(REDACTED, text)

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)  # other handlers keep the original
        record.msg, record.args = escape(record.getMessage()), None
        return self.redact(super().format(record))


def configure(level: str, secrets: tuple[str, ...] = ()) -> None:
    """Route the root logger through the safe formatter (once per process)."""
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_podrelay", False)]:
        root.removeHandler(old)
    handler._podrelay = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
