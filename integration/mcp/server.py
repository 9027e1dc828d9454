"""podrelay's MCP server (the official `mcp` SDK's low-level `Server`): the tools of
`tools.py`, and resources: `podrelay://models` and each job as `podrelay://jobs/{id}`.

Two transports, one server:
- streamable HTTP, stateless (`http_app`): served by uvicorn in a child process of each web
  process and reached through the web process's `/mcp` route (`integration/api/mcp.py`),
  which authenticates the API key; each request's `Authorization` header is the key its
  tool calls use. Stateless, because a deployment has several web processes (and dynos)
  and any of them may get a client's next request;
- stdio (`run_stdio`), for desktop clients that start a local process: it talks to a
  running podrelay at a URL, with one API key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import mcp.types as t
from mcp.server import Server, ServerRequestContext
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

from integration import surfaces
from integration.mcp import tools
from integration.mcp.rest import Podrelay, RestError

NAME = "podrelay"
INSTRUCTIONS = (
    "podrelay runs GPU inference jobs (chat, images, transcription, embeddings, speech, video, music, image edits) "
    "on RunPod. Each surface tool queues a job and waits for it; a long one answers with its job id: "
    "call job_wait with that id. Use price to see a request's cost first."
)
ROUTES = {s.name: s.route for s in surfaces.SURFACES.values()}
JOB_URI = re.compile(r"^podrelay://jobs/(?P<id>[A-Za-z0-9_-]{1,100})$")
MODELS_URI = "podrelay://models"
RESOURCE_NOT_FOUND = -32002  # the MCP spec's code for an unknown resource


def build(base_url: str, key: str | None = None, wait: float = 60.0) -> Server:
    """The server, calling podrelay at `base_url` with `key`, or (None) with each HTTP request's own Bearer key."""
    cached: dict[str, object] = {}

    def api(ctx: ServerRequestContext) -> Podrelay:
        token = key
        if token is None:
            header = ctx.request.headers.get("authorization", "") if ctx.request is not None else ""
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise MCPError(-32001, "Missing API key: send Authorization: Bearer <api-key>")
        return Podrelay(base_url, token.strip())

    async def routes(client: Podrelay) -> dict[str, str]:
        """The surfaces this podrelay serves, and its OpenAPI document (fetched once)."""
        if "document" not in cached:
            cached["document"] = await client.openapi()
        paths = cached["document"]["paths"]
        return {name: route for name, route in ROUTES.items() if f"/v1{route}" in paths}

    async def list_tools(ctx: ServerRequestContext, params) -> t.ListToolsResult:
        async with api(ctx) as client:
            found = await routes(client)
            return t.ListToolsResult(tools=tools.tools(cached["document"], found))

    async def call_tool(ctx: ServerRequestContext, params: t.CallToolRequestParams) -> t.CallToolResult:
        async def progress(done: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(done, total, message)

        async with api(ctx) as client:
            try:
                found = await routes(client)
            except RestError as error:
                return tools.refused(error)
            return await tools.call(client, found, params.name, dict(params.arguments or {}), wait, progress)

    async def list_resources(ctx: ServerRequestContext, params) -> t.ListResourcesResult:
        models = t.Resource(
            uri=MODELS_URI, name="models", description="Every model, its surface and price", mime_type="application/json"
        )
        async with api(ctx) as client:
            try:
                recent = (await client.jobs({"limit": 20})).get("data", [])
            except RestError as error:
                raise MCPError(-32603, str(error)) from None
        jobs = [
            t.Resource(uri=f"podrelay://jobs/{job['id']}", name=f"{job.get('surface')} job {job['id']} ({job.get('status')})",
                       mime_type="application/json")
            for job in recent
        ]  # fmt: skip
        return t.ListResourcesResult(resources=[models, *jobs])

    async def list_templates(ctx: ServerRequestContext, params) -> t.ListResourceTemplatesResult:
        job = t.ResourceTemplate(
            uri_template="podrelay://jobs/{id}",
            name="job",
            description="One of your jobs and its result",
            mime_type="application/json",
        )
        return t.ListResourceTemplatesResult(resource_templates=[job])

    async def read_resource(ctx: ServerRequestContext, params: t.ReadResourceRequestParams) -> t.ReadResourceResult:
        uri = str(params.uri)
        matched = JOB_URI.match(uri)
        if uri != MODELS_URI and matched is None:
            raise MCPError(RESOURCE_NOT_FOUND, f"No resource {uri}")
        async with api(ctx) as client:
            try:
                body = await (client.models() if matched is None else client.job(matched["id"]))
            except RestError as error:
                raise MCPError(RESOURCE_NOT_FOUND if error.status == 404 else -32603, str(error)) from None
        text = json.dumps(body)
        return t.ReadResourceResult(contents=[t.TextResourceContents(uri=uri, mime_type="application/json", text=text)])

    return Server(
        NAME,
        version=_version(),
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("podrelay")
    except PackageNotFoundError:
        return "0.2.0"


def http_app(base_url: str, wait: float) -> Callable:
    """The streamable HTTP ASGI app at `/mcp`, stateless. It listens on loopback only, behind the
    web process's `/mcp` route, which checks the key; DNS-rebinding protection does not apply there
    (a Bearer key, never a cookie, authorises a request)."""
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return build(base_url, None, wait).streamable_http_app(stateless_http=True, transport_security=security)


async def run_stdio(base_url: str, key: str, wait: float) -> None:
    """Serve MCP on standard input and output, calling podrelay at `base_url` with `key`."""
    from mcp.server.stdio import stdio_server

    server = build(base_url, key, wait)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
