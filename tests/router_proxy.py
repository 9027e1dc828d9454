"""A loopback stand-in for Heroku's router, as its Dev Center documents it (articles/request-timeout):
a request whose response has not sent its first byte within 30 s is ended with a 503 (H12),
and once it has, each further byte must come within a 55 s rolling window (H15/H28).

It relays bytes both ways and keeps only that clock: after the client sends a request, the
app has `first_byte` seconds to send anything back.
"""

from __future__ import annotations

import select
import socket
import threading
import time

H12 = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nX-Router-Error: H12\r\n\r\n"


class FirstByteRouter:
    """`url` forwards to `upstream_port`; `cut` counts the requests it ended for want of a byte."""

    def __init__(self, upstream_port: int, first_byte: float = 30.0, rolling: float = 55.0):
        self.upstream_port, self.first_byte, self.rolling = upstream_port, first_byte, rolling
        self.cut = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        waiting_since: float | None = None  # a request went up and nothing came back yet
        last_byte = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if waiting_since is not None:
                    left = self.first_byte - (now - waiting_since)
                else:
                    left = self.rolling - (now - last_byte)
                if left <= 0:
                    if waiting_since is not None:
                        self.cut += 1
                        client.sendall(H12)
                    return
                readable, _, _ = select.select([client, upstream], [], [], left)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        upstream.sendall(data)
                        if waiting_since is None:
                            waiting_since = time.monotonic()
                    else:
                        client.sendall(data)
                        waiting_since, last_byte = None, time.monotonic()
        except OSError:
            return
        finally:
            client.close()
            upstream.close()
