"""The MCP HTTP server's process: a child of the web process, started on the first `/mcp` request.

The SDK's streamable HTTP transport is an ASGI app on asyncio, and the web process is WSGI
on gevent; the two do not share a process well, so the app runs under uvicorn in a child
on a loopback socket the web process opened (so its port is known before the child
starts and no other process can take it). The web process's `/mcp` route forwards to it.
The child ends with its parent: `close()` stops it, and it exits by itself when its
parent is gone (`__main__._exit_with`), so a killed web process leaves none behind.
"""

from __future__ import annotations

import atexit
import logging
import socket
import subprocess
import sys
import threading

log = logging.getLogger(__name__)


class McpProcess:
    """One web process's MCP child, started when first needed."""

    def __init__(self, wait: float):
        self.wait = wait
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._port = 0

    def port(self, base_url: str) -> int:
        """The child's loopback port, starting it (calling podrelay back at `base_url`) when it is not running."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return self._port
            listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listening.bind(("127.0.0.1", 0))
                listening.listen(128)  # connections wait in the backlog until uvicorn accepts them
                fd = listening.fileno()
                command = [sys.executable, "-m", "integration.mcp", "serve", "--fd", str(fd), "--base-url", base_url]
                self._process = subprocess.Popen([*command, "--wait", str(self.wait)], pass_fds=[fd])
                self._port = listening.getsockname()[1]
            finally:
                listening.close()  # the child has its own copy
            atexit.register(self.close)
            log.info("MCP server started (pid %d, port %d)", self._process.pid, self._port)
            return self._port

    def close(self) -> None:
        """Stop the child, if it runs."""
        with self._lock:
            process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
