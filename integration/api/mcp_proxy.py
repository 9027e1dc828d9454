"""`/mcp`: the MCP server's streamable HTTP transport, on the web process's own port.

The route checks the API key (401 with the MCP spec's `WWW-Authenticate` and protected
resource metadata otherwise), then forwards the request to this process's MCP child
(`integration/mcp/process.py`) and streams its answer back as it comes (JSON, or Server-Sent
Events carrying progress notifications). On Heroku only the `web` process gets HTTP, so the
MCP server lives behind this route rather than on a port of its own.
"""

from __future__ import annotations

import json
import time

import requests
from flask import Blueprint, Response, jsonify, request, stream_with_context

from integration.api.admission import require_api_key
from integration.api.context import resources
from integration.api.errors import render
from integration.errors import ApiError

bp = Blueprint("mcp", __name__)
# What passes through besides every `Mcp-*` header (the 2026-07-28 protocol routes on `Mcp-Method`).
FORWARDED = ("authorization", "content-type", "accept", "last-event-id")
ANSWERED = ("content-type", "cache-control")
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 60.0  # the child sends progress every few seconds while a tool waits
METADATA = "/.well-known/oauth-protected-resource"
REFUSALS = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 406: "not_acceptable"}
REFUSALS.update({413: "request_too_large", 415: "unsupported_media_type"})
ANSWER_MAX = 420.0  # wall clock for one answer: job_wait's longest wait and then some


def _resource() -> str:
    base = resources().settings.public_base_url or request.host_url.rstrip("/")
    return f"{base.rstrip('/')}/mcp"


def _mcp_header(name: str) -> bool:
    return name.lower().startswith("mcp-")


def _loopback() -> str:
    """This server's own address, as the connection came in (gunicorn's or werkzeug's socket)."""
    connection = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    if connection is None:
        return f"http://127.0.0.1:{request.environ.get('SERVER_PORT', '5000')}"
    host, port = connection.getsockname()[:2]
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@bp.route("/mcp", methods=["GET", "POST", "DELETE"])
def mcp_endpoint():
    """The MCP endpoint (streamable HTTP, stateless): initialize, tools, resources."""
    res = resources()
    if not res.settings.mcp_enabled:
        raise ApiError(404, "not_found", "The MCP server is off here (MCP_ENABLED=0)")
    try:
        require_api_key()
    except ApiError as error:
        answer = render(error)
        answer.headers["WWW-Authenticate"] = (
            f'Bearer error="invalid_token", resource_metadata="{_resource().removesuffix("/mcp")}{METADATA}"'
        )
        return answer
    request.max_content_length = res.settings.upload_max_bytes  # a tool's arguments may carry a data URI
    port = res.mcp.port(_loopback())
    headers = {name: value for name, value in request.headers.items() if name.lower() in FORWARDED or _mcp_header(name)}
    try:
        upstream = requests.request(
            request.method,
            f"http://127.0.0.1:{port}/mcp",
            data=request.get_data(),
            headers=headers,
            stream=True,
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
        )
    except requests.RequestException:
        raise ApiError(503, "mcp_unavailable", "The MCP server did not answer; try again") from None

    def body():
        deadline = time.monotonic() + ANSWER_MAX
        try:
            for chunk in upstream.iter_content(chunk_size=None):
                yield chunk
                if time.monotonic() > deadline:
                    return
        except requests.RequestException:
            return  # the child stopped mid-answer: the client sees the stream end
        finally:
            upstream.close()

    if upstream.status_code >= 400:
        raise _refusal(upstream)
    answered = {name: value for name, value in upstream.headers.items() if name.lower() in ANSWERED or _mcp_header(name)}
    answered["X-Accel-Buffering"] = "no"
    return Response(stream_with_context(body()), status=upstream.status_code, headers=answered)


def _refusal(upstream: requests.Response) -> ApiError:
    """The SDK's refusal (JSON-RPC or plain text) in podrelay's error envelope, with its status."""
    try:
        text = upstream.raw.read(4096, decode_content=True).decode("utf-8", "replace")
    except (requests.RequestException, OSError):
        text = ""
    finally:
        upstream.close()
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = text.strip()[:500] or f"The MCP server answered {upstream.status_code}"
    status = upstream.status_code if upstream.status_code in REFUSALS else 503
    return ApiError(status, REFUSALS.get(status, "mcp_unavailable"), f"MCP: {message}")


@bp.get(METADATA)
@bp.get(f"{METADATA}/mcp")
def protected_resource():
    """RFC 9728 metadata for `/mcp`: a Bearer token in the header, podrelay's own API keys."""
    return jsonify(
        resource=_resource(),
        bearer_methods_supported=["header"],
        resource_name="podrelay",
        resource_documentation=f"{request.host_url.rstrip('/')}/docs",
    )
