"""podrelay's REST API as the MCP server calls it: with the caller's own API key, over HTTP.

Every tool call is an ordinary request to podrelay (`POST /v1/<route>`, `GET /v1/jobs/{id}`,
`GET /v1/jobs/{id}/events`, ...), so keys, rate limits, budgets, idempotency and webhooks
apply to an agent exactly as to any client, and the stdio server talks to a remote podrelay
the same way the HTTP one talks to its own web process. Answers that are not 2xx become
`RestError`s carrying podrelay's error envelope.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx2

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0  # a single answer; the event stream below sends a keepalive well within it
FILE_MAX = 1024 * 1024  # a result file up to this size comes back inline as MCP image/audio content


@dataclass
class RestError(Exception):
    """A podrelay answer that was not a success: its status and error envelope."""

    status: int
    code: str
    message: str
    param: str | None = None

    def __str__(self) -> str:
        named = f" (param: {self.param})" if self.param else ""
        return f"{self.code}: {self.message}{named}"


@dataclass(frozen=True)
class JobEvent:
    """One Server-Sent Event of `GET /v1/jobs/{id}/events`."""

    name: str
    data: dict


class Podrelay:
    """One caller's view of podrelay: its base URL and API key (never logged)."""

    def __init__(self, base_url: str, key: str, transport: httpx2.AsyncBaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        timeout = httpx2.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        headers = {"Authorization": f"Bearer {key}", "User-Agent": "podrelay-mcp"}
        self._http = httpx2.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    async def __aenter__(self) -> Podrelay:
        return self

    async def __aexit__(self, *exc) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs) -> dict:
        try:
            answer = await self._http.request(method, path, **kwargs)
        except httpx2.HTTPError as error:
            raise RestError(
                502, "podrelay_unreachable", f"podrelay did not answer {method} {path}: {type(error).__name__}"
            ) from None
        return _body(answer)

    async def enqueue(self, route: str, body: dict) -> dict:
        """`POST /v1<route>`: the stored job (202), or the error."""
        return await self._call("POST", f"/v1{route}", json=body)

    async def price(self, route: str, body: dict) -> dict:
        """`POST /v1<route>/price`."""
        return await self._call("POST", f"/v1{route}/price", json=body)

    async def job(self, job_id: str) -> dict:
        """`GET /v1/jobs/{id}`."""
        return await self._call("GET", f"/v1/jobs/{_segment(job_id)}")

    async def jobs(self, params: dict) -> dict:
        """`GET /v1/jobs` with the listing's query parameters."""
        return await self._call("GET", "/v1/jobs", params=params)

    async def cancel(self, job_id: str) -> dict:
        """`POST /v1/jobs/{id}/cancel`."""
        return await self._call("POST", f"/v1/jobs/{_segment(job_id)}/cancel")

    async def models(self) -> dict:
        """`GET /v1/models`."""
        return await self._call("GET", "/v1/models")

    async def openapi(self) -> dict:
        """`GET /openapi.json`: the document the tools' input schemas are taken from."""
        return await self._call("GET", "/openapi.json")

    async def events(self, job_id: str, seconds: float) -> AsyncIterator[JobEvent]:
        """The job's events (`GET /v1/jobs/{id}/events`) for up to `seconds`; ends at its final `job` event."""
        deadline = time.monotonic() + seconds
        try:
            async with self._http.stream("GET", f"/v1/jobs/{_segment(job_id)}/events") as answer:
                if answer.status_code != 200:
                    await answer.aread()
                    _body(answer)
                async for sse in httpx2.EventSource(answer):
                    if sse.event and sse.data:
                        yield JobEvent(sse.event, json.loads(sse.data))
                    if sse.event == "job" or time.monotonic() > deadline:
                        return
        except httpx2.HTTPError as error:
            raise RestError(
                502, "podrelay_unreachable", f"the events of job {job_id} broke off: {type(error).__name__}"
            ) from None

    async def file(self, url: str) -> tuple[bytes, str] | None:
        """A result file's bytes and content type when it is at most FILE_MAX, else None."""
        try:
            async with self._http.stream("GET", urljoin(self.base_url + "/", url), follow_redirects=True) as answer:
                if answer.status_code != 200 or int(answer.headers.get("content-length") or 0) > FILE_MAX:
                    return None
                data = b""
                async for chunk in answer.aiter_bytes():
                    data += chunk
                    if len(data) > FILE_MAX:
                        return None
                return data, answer.headers.get("content-type", "application/octet-stream").split(";")[0]
        except httpx2.HTTPError:
            return None


def _segment(value: str) -> str:
    """A path segment from an argument: refused if it could reach another route."""
    if not value or any(c in value for c in "/?#%") or value in (".", ".."):
        raise RestError(400, "validation_error", f"Invalid id: {value!r}", "id")
    return value


def _body(answer: httpx2.Response) -> dict:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.is_success and isinstance(body, dict):
        return body
    error = (body or {}).get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": "http_error", "message": f"podrelay answered {answer.status_code}"}
    raise RestError(answer.status_code, error.get("code") or "http_error", error.get("message") or "", error.get("param"))
