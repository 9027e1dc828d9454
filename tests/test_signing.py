"""podrelay's signer against the Standard Webhooks reference library."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integration.webhooks.signing import new_secret, signature_header


def headers(secrets: list[str], body: bytes, msg_id: str = "msg_1", timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
    }


def test_new_secrets_have_the_spec_shape():
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret[6:])) <= 64
    assert new_secret() != secret


def test_reference_library_verifies_our_signature_with_any_live_secret():
    old, new = new_secret(), new_secret()
    body = b'{"type":"job.completed","data":{}}'
    signed = headers([new, old], body)
    assert Webhook(old).verify(body, signed)["type"] == "job.completed"
    assert Webhook(new).verify(body, signed)["type"] == "job.completed"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, h, s: (body + b" ", h, s),  # body changed
        lambda body, h, s: (body, {**h, "webhook-id": "msg_2"}, s),  # id changed
        lambda body, h, s: (body, h, new_secret()),  # another secret
        lambda body, h, s: (body, headers([s], body, timestamp=int(time.time()) - 3600), s),  # stale
    ],
)
def test_reference_library_refuses_what_it_should(tamper):
    secret = new_secret()
    body = b'{"type":"job.completed"}'
    body, signed, verifying_secret = tamper(body, headers([secret], body), secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(verifying_secret).verify(body, signed)
