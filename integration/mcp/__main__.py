"""`python -m integration.mcp serve --fd N --base-url URL` (the web process's child, on a socket
it was handed) or `python -m integration.mcp stdio --url URL` (key in PODRELAY_API_KEY)."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time

import anyio


def _exit_with(parent: int) -> None:
    """End this process when the web process that started it is gone (even killed)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m integration.mcp")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("--fd", type=int, required=True)
    serve.add_argument("--base-url", required=True)
    serve.add_argument("--wait", type=float, default=60.0)
    stdio = commands.add_parser("stdio")
    stdio.add_argument("--url", default=os.environ.get("PODRELAY_URL", "http://127.0.0.1:5000"))
    stdio.add_argument("--wait", type=float, default=60.0)
    args = parser.parse_args(argv)
    from integration.mcp import server

    if args.command == "stdio":
        key = os.environ.get("PODRELAY_API_KEY", "")
        if not key:
            sys.exit("set PODRELAY_API_KEY to the podrelay API key the MCP server should use")
        anyio.run(server.run_stdio, args.url, key, args.wait)
        return
    import uvicorn

    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    listening = socket.socket(fileno=args.fd)
    config = uvicorn.Config(server.http_app(args.base_url, args.wait), log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[listening])


if __name__ == "__main__":
    main()
