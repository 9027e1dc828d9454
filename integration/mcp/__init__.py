"""The MCP server: podrelay's surfaces and jobs as tools and resources for AI agents.

`server.py` builds it (the official `mcp` SDK), `tools.py` has the tools, `rest.py` calls
podrelay's REST API with the caller's key, `process.py` runs the HTTP transport in a child
process of a web process. Above the domains, like `integration/api`: nothing below imports it.
"""
