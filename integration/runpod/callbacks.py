"""Provider callback URLs: RunPod's webhooks are unsigned, so the URL carries the proof.

Each job's callback URL holds an itsdangerous token that signs the job id with
`SECRET_KEY`. Only RunPod was given the URL; a forged or altered token fails to verify.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

_SALT = "podrelay.runpod-callback"
ROUTE = "/callbacks/runpod/"


class CallbackTokens:
    """Signs and verifies the job id carried in a callback URL."""

    def __init__(self, secret_key: str):
        self._serializer = URLSafeSerializer(secret_key, salt=_SALT)

    def token(self, job_id: str) -> str:
        """The signed token naming `job_id`."""
        return self._serializer.dumps(job_id)

    def job_id(self, token: str) -> str | None:
        """The job id in `token`, or None when it was not signed by us."""
        try:
            value = self._serializer.loads(token)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def url(self, public_base_url: str, job_id: str) -> str:
        """The callback URL RunPod is given for `job_id`."""
        return f"{public_base_url.rstrip('/')}{ROUTE}{self.token(job_id)}"
