"""One delivery attempt: signed per Standard Webhooks, posted once, described for the log.

The attempt has a wall-clock deadline (`deadline.py`), follows no redirect, reads at most
`RESPONSE_KEPT` bytes of the answer, and reads `Retry-After` (RFC 9110, section 10.2.3).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import requests
import urllib3
from requests_hardened.ip_filter import InvalidIPAddress

from integration.runpod.client import parse_retry_after
from integration.webhooks import outbound
from integration.webhooks.deadline import deadline
from integration.webhooks.deliveries import Delivery
from integration.webhooks.signing import signature_header

RESPONSE_KEPT = 1024  # bytes of a receiver's answer kept in the attempt log


def iso(timestamp: float) -> str:
    """A moment as the attempt log writes it: ISO 8601, seconds, UTC."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def post(http: requests.Session, delivery: Delivery, secrets: list[str], limit: float, now: float) -> tuple[dict, float | None]:
    """Send the delivery once; the attempt (time, status code, latency, answer, error) and `Retry-After`."""
    body = delivery.body.encode()
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(now)),
        "webhook-signature": signature_header(secrets, delivery.event_id, int(now), body),
    }
    attempt: dict = {"at": iso(now), "status_code": None, "latency_ms": None, "response_body": None, "error": None}
    retry_after = None
    started = time.perf_counter()
    try:
        timeout = (outbound.TIMEOUT[0], limit)
        with (
            deadline(limit),
            http.post(delivery.url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True) as answer,
        ):
            attempt["status_code"] = answer.status_code
            attempt["response_body"] = answer.raw.read(RESPONSE_KEPT, decode_content=True).decode("utf-8", "replace")
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
    except InvalidIPAddress:
        attempt["error"] = "refused: the URL resolves to a private, loopback or reserved address"
    except (requests.RequestException, ValueError, urllib3.exceptions.HTTPError, OSError) as error:
        # ValueError: a URL urllib3 cannot parse; the others: the receiver, or the deadline, cut it
        if time.perf_counter() - started >= limit * 0.95:
            attempt["status_code"] = None
            attempt["error"] = f"no complete answer within {limit:g} s (WEBHOOK_TIMEOUT)"
        else:
            attempt["error"] = f"{type(error).__name__}: {str(error)[:300]}"
    attempt["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return attempt, retry_after
