"""The RunPod Serverless client: run, runsync, status, stream, cancel, retry, purge-queue, health.

Follows RunPod's serverless endpoint API (`/v2/{endpoint_id}/...`). One
`requests.Session` (connection reuse), connect and read timeouts on every call, and a
few retries with backoff for 429, 5xx and connection errors that honour `Retry-After`
(RFC 9110, section 10.2.3, seconds or an HTTP date). Past those, a typed error says
whether the caller may try again later (`RunPodUnavailable`) or not.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class RunPodError(Exception):
    """A RunPod call failed; `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RunPodUnavailable(RunPodError):
    """429, 5xx or no answer: try again later (after `retry_after` when given)."""


class RunPodNotFound(RunPodError):
    """404: no such job (RunPod forgets finished jobs after 30 minutes) or endpoint."""


class RunPodAuthError(RunPodError):
    """401/403: the API key is wrong or lacks access to the endpoint."""


class RunPodRequestError(RunPodError):
    """Any other 4xx: RunPod refused the request itself."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delay-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RunPodClient:
    """Calls one RunPod account's serverless endpoints."""

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.runpod.ai/v2",
        timeout: tuple[float, float] = (5.0, 30.0),
        retries: int = 2,
        backoff: float = 0.5,
        max_sleep: float = 5.0,
        pool_size: int = 32,
        on_call: Callable[[str, str], None] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_sleep = max_sleep
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.calls: dict[str, int] = {}  # by operation, for benchmarks
        self.on_call = on_call or (lambda operation, status: None)  # (operation, HTTP status or error): metrics

    # -- operations -----------------------------------------------------------------

    def run(
        self,
        endpoint_id: str,
        job_input: dict,
        webhook: str | None = None,
        policy: dict | None = None,
        s3_config: dict | None = None,
    ) -> dict:
        """Queue a job; answers `{"id", "status"}`."""
        return self._call("run", "POST", f"{endpoint_id}/run", json=self._body(job_input, webhook, policy, s3_config))

    def runsync(
        self,
        endpoint_id: str,
        job_input: dict,
        wait_ms: int | None = None,
        webhook: str | None = None,
        policy: dict | None = None,
        s3_config: dict | None = None,
    ) -> dict:
        """Run and wait (RunPod holds the call up to `wait` ms, then answers the status)."""
        params = {"wait": wait_ms} if wait_ms else None
        read = max(self.timeout[1], (wait_ms or 90_000) / 1000 + 10)
        body = self._body(job_input, webhook, policy, s3_config)
        return self._call("runsync", "POST", f"{endpoint_id}/runsync", json=body, params=params, read_timeout=read)

    def status(self, endpoint_id: str, job_id: str) -> dict:
        """A job's status (and output once it has one)."""
        return self._call("status", "GET", f"{endpoint_id}/status/{job_id}")

    def stream(self, endpoint_id: str, job_id: str) -> dict:
        """The job's stream pieces produced since the last read (RunPod hands each out once)."""
        return self._call("stream", "GET", f"{endpoint_id}/stream/{job_id}")

    def cancel(self, endpoint_id: str, job_id: str) -> dict:
        """Cancel a job."""
        return self._call("cancel", "POST", f"{endpoint_id}/cancel/{job_id}")

    def retry(self, endpoint_id: str, job_id: str) -> dict:
        """Run a failed or timed-out job again."""
        return self._call("retry", "POST", f"{endpoint_id}/retry/{job_id}")

    def purge_queue(self, endpoint_id: str) -> dict:
        """Remove the endpoint's queued jobs."""
        return self._call("purge-queue", "POST", f"{endpoint_id}/purge-queue")

    def health(self, endpoint_id: str) -> dict:
        """The endpoint's worker and job counts."""
        return self._call("health", "GET", f"{endpoint_id}/health")

    # -- plumbing -------------------------------------------------------------------

    @staticmethod
    def _body(job_input: dict, webhook: str | None, policy: dict | None, s3_config: dict | None = None) -> dict:
        body: dict = {"input": job_input}
        if webhook:
            body["webhook"] = webhook
        if policy:
            body["policy"] = policy
        if s3_config:
            body["s3Config"] = s3_config
        return body

    def _call(self, operation: str, method: str, path: str, read_timeout: float | None = None, **kwargs) -> dict:
        url = f"{self.base_url}/{path}"
        timeout = (self.timeout[0], read_timeout or self.timeout[1])
        attempt = 0
        while True:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            try:
                response = self.session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
            except requests.ConnectionError as error:
                self.on_call(operation, "connection_error")
                failure: RunPodError = RunPodUnavailable(f"RunPod {operation}: connection failed: {type(error).__name__}")
            except requests.Timeout:
                self.on_call(operation, "timeout")
                failure = RunPodUnavailable(f"RunPod {operation}: timed out")
            else:
                self.on_call(operation, str(response.status_code))
                if response.status_code < 300:
                    try:
                        return response.json()
                    except ValueError:
                        raise RunPodUnavailable(f"RunPod {operation}: answer is not JSON", response.status_code) from None
                failure = self._error(operation, response)
            if not isinstance(failure, RunPodUnavailable) or attempt >= self.retries:
                raise failure
            # Never retry a /run whose request may have reached RunPod (a read timeout).
            if operation in ("run", "runsync") and failure.status is None and "timed out" in str(failure):
                raise failure
            delay = failure.retry_after if failure.retry_after is not None else self.backoff * 2**attempt
            if delay > self.max_sleep:
                raise failure  # the caller reschedules rather than hold a worker this long
            time.sleep(delay * random.uniform(0.8, 1.2) if failure.retry_after is None else delay)
            attempt += 1

    @staticmethod
    def _error(operation: str, response: requests.Response) -> RunPodError:
        status = response.status_code
        try:
            detail = response.json().get("error") or response.text[:200]
        except (ValueError, AttributeError):
            detail = response.text[:200]
        message = f"RunPod {operation}: HTTP {status}: {detail}"
        if status in RETRYABLE_STATUS:
            return RunPodUnavailable(message, status, parse_retry_after(response.headers.get("Retry-After")))
        if status == 404:
            return RunPodNotFound(message, status)
        if status in (401, 403):
            return RunPodAuthError(message, status)
        return RunPodRequestError(message, status)
